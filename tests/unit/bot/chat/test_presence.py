"""The typing helper and typing keeper: no traffic for a fast command, one notice per place
for overlapping blocks, and a router that marks what it takes as read."""

from __future__ import annotations

import asyncio

from bot.chat.presence import typing_after
from connectors.base import RoomId, ThreadId
from connectors.errors import ConnectorError
from connectors.presence import TypingKeeper
from tests.unit.chat_fakes import FakeConnector

ROOM = RoomId("!room:example.org")


class Gate:
    """A sleep that returns only when the test opens it."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.asked: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.opened.wait()


async def test_a_fast_block_sends_no_typing() -> None:
    """A block that ends before the delay causes no typing at all."""
    chat, gate = FakeConnector(), Gate()
    async with typing_after(chat, ROOM, None, sleep=gate.sleep):
        await asyncio.sleep(0)
    assert chat.typed == [] and gate.asked == [1.0]


async def test_a_slow_block_types_in_its_thread_until_it_ends() -> None:
    """Once the delay is over the bot types where the answer goes, until the block ends."""
    chat, gate = FakeConnector(), Gate()
    thread = ThreadId("$root")
    async with typing_after(chat, ROOM, thread, sleep=gate.sleep):
        gate.opened.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert chat.typed == [(ROOM, thread)]


async def test_the_keeper_sends_one_notice_per_place_and_swallows_failures() -> None:
    """Two overlapping blocks in one room: one start, one stop, after the last; a failing
    service never reaches the caller."""
    said: list[tuple[str, bool]] = []

    async def say(place: str, on: bool) -> None:
        said.append((place, on))
        if place == "!down":
            raise ConnectorError("no")

    keeper = TypingKeeper(say, refresh=3600, name="test")
    async with keeper.typing("!a"):
        async with keeper.typing("!a"):
            await asyncio.sleep(0)
        assert said == [("!a", True)]
    assert said == [("!a", True), ("!a", False)]
    async with keeper.typing("!down"):
        await asyncio.sleep(0)
    assert said[-1] == ("!down", False)
    await keeper.stop()


async def test_the_keeper_refreshes_before_the_notice_lapses() -> None:
    """While a block runs the notice is renewed every ``refresh`` seconds."""
    said: list[bool] = []
    thrice = asyncio.Event()

    async def say(place: str, on: bool) -> None:
        said.append(on)
        if said.count(True) == 3:
            thrice.set()

    keeper = TypingKeeper(say, refresh=0.001, name="test")
    async with keeper.typing("!a"):
        await thrice.wait()
    assert said.count(True) >= 3 and said[-1] is False
