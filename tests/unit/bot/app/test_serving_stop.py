"""Once the stop began, a message read is still handed to the router, marked as read while
stopping (the router answers a command that it was not run), and what was read so is
finished before the connectors stop being read is done — while the ledger is still open (a
command typed as Ctrl-C landed once ran on after the ledger closed, and failed)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.app.serving import Serving
from tests.unit.chat_fakes import FakeConnector

ROOM = "!room:example.org"
OTHER = "!other:example.org"  # another conversation: not held behind the first


class Recording:
    """A router that records what it was handed and whether it came while stopping; the
    first message waits for ``release``, each one read while stopping takes a moment."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, bool]] = []
        self.done: list[str] = []
        self.release = asyncio.Event()

    async def handle(self, connector: Any, message: Any, *, stopping: bool = False) -> None:
        self.handled.append((message.text, stopping))
        if len(self.handled) == 1:
            await self.release.wait()
        if stopping:
            await asyncio.sleep(0.05)
        self.done.append(message.text)


async def _settled() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_message_read_during_the_drain_is_handled_as_stopping_and_finished() -> None:
    connector = FakeConnector()
    router = Recording()
    serving = Serving(on_closed=lambda: None)
    await serving.start([connector], router)  # type: ignore[arg-type]
    connector.person_says(ROOM, "task run 3", addressed=True)
    await _settled()
    assert router.handled == [("task run 3", False)]
    draining = asyncio.create_task(serving.finish(within=5))
    await _settled()
    assert not draining.done()  # the command in flight is waited for
    connector.person_says(OTHER, "spawn demo", addressed=True)  # Ctrl-C landed, then this
    await _settled()
    assert router.handled[1] == ("spawn demo", True)
    router.release.set()
    await draining
    connector.person_says(ROOM, "ps", addressed=True)
    await _settled()
    assert router.handled[2] == ("ps", True)
    await serving.close()
    assert router.done == ["task run 3", "spawn demo", "ps"]  # none cut off by the close
