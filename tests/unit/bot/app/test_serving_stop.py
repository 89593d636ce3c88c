"""A message read once the stop began is not handled — the stop goes on to close what
handling it needs, the ledger among them — but answered that it was not run (a command
typed as Ctrl-C landed once ran on after the ledger closed, and failed)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.app.serving import STOPPING, Serving
from tests.unit.chat_fakes import FakeConnector

ROOM = "!room:example.org"


class Recording:
    """A router that records what it was handed."""

    def __init__(self) -> None:
        self.handled: list[str] = []

    async def handle(self, connector: Any, message: Any) -> None:
        self.handled.append(message.text)


async def _settled() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_message_read_after_the_stop_began_is_answered_not_run() -> None:
    connector = FakeConnector()
    router = Recording()
    serving = Serving(on_closed=lambda: None)
    await serving.start([connector], router)  # type: ignore[arg-type]
    connector.person_says(ROOM, "ps", addressed=True)
    await _settled()
    assert router.handled == ["ps"]
    await serving.finish(within=5)
    connector.person_says(ROOM, "spawn demo", addressed=True)
    connector.person_says(ROOM, "just chatting")  # not to the bot: no answer
    await _settled()
    assert router.handled == ["ps"]
    assert [m.markdown for m in connector.sent] == [STOPPING]
    await serving.close()
