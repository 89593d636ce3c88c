"""Once the stop began, a message read is still handed to the router, marked as read while
stopping (the router answers a command that it was not run), and what was read so is
finished before the connectors stop being read is done — while the ledger is still open (a
command typed as Ctrl-C landed once ran on after the ledger closed, and failed)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.app.serving import Handles, Serving
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


async def _served(router: Handles, grace: float = 5.0) -> tuple[FakeConnector, Serving]:
    """A connector served to ``router``, ``task run 3`` already read from it."""
    connector = FakeConnector()
    serving = Serving(on_closed=lambda: None, grace=grace)
    await serving.start([connector], router)
    connector.person_says(ROOM, "task run 3", addressed=True)
    await _settled()
    return connector, serving


async def test_a_message_read_during_the_drain_is_handled_as_stopping_and_finished() -> None:
    router = Recording()
    connector, serving = await _served(router)
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


class Stuck:
    """A router whose every message waits forever (until cancelled), recording each one
    cancelled."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def handle(self, connector: Any, message: Any, *, stopping: bool = False) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(message.text)
            raise


async def test_the_stop_waits_once_for_what_was_read_in_all() -> None:
    """`finish(within=…)` sets one deadline for both waits: once it has passed, what is read
    while stopping is given only the grace (it only answers), then cancelled at the close."""
    router = Stuck()
    connector, serving = await _served(router, grace=0.2)
    await serving.finish(within=0.3)  # the deadline passes: cancelled
    assert router.cancelled == ["task run 3"]
    connector.person_says(OTHER, "approve k7q2", addressed=True)
    await _settled()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await serving.close()
    assert router.cancelled == ["task run 3", "approve k7q2"]
    assert 0.2 <= loop.time() - began < 0.3 + 0.2  # the grace, not the whole wait again


async def test_what_is_read_after_the_deadline_still_gets_its_grace() -> None:
    """The deadline passed on a stuck command: a refusal read after it still finishes."""
    router = Recording()
    connector, serving = await _served(router)
    await serving.finish(within=0.1)  # `task run 3` waits for `release`: cancelled
    connector.person_says(OTHER, "spawn demo", addressed=True)
    await _settled()
    await serving.close()
    assert router.handled == [("task run 3", False), ("spawn demo", True)]
    assert router.done == ["spawn demo"]
