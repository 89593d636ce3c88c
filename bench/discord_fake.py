"""The fake Discord of ``discord_roundtrip``, timed: it notes when it stores each message
the bot posts, and wakes whoever waits for one — an event, never a poll."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bench.processes import BenchError
from tests.fakes.discord.server import FakeDiscord

T = TypeVar("T")


@dataclass(frozen=True)
class Arrival:
    at: float  # perf_counter when the fake had stored it
    channel_id: int
    message_id: int
    reply_to: int | None  # message_reference.message_id
    chars: int


class TimedDiscord(FakeDiscord):
    """The fake Discord, noting when it stores each message the bot posts.

    Its MESSAGE_CREATE dispatch is the hook: the fake stores a message and then dispatches
    it (before answering the POST), so the time taken there is "stored".
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[Arrival] = []
        self._changed = asyncio.Event()
        self._failure: BaseException | None = None

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        if event == "MESSAGE_CREATE" and data["author"]["id"] == self.bot_user["id"]:
            reference = (data.get("message_reference") or {}).get("message_id")
            self.arrivals.append(
                Arrival(
                    time.perf_counter(),
                    int(data["channel_id"]),
                    int(data["id"]),
                    None if reference is None else int(reference),
                    len(data.get("content") or ""),
                )
            )
            self._changed.set()
        await super()._dispatch(event, data)

    def fail(self, exc: BaseException) -> None:
        """Make every current and future wait raise ``exc``."""
        if self._failure is None:
            self._failure = exc
        self._changed.set()

    async def wait_for(self, probe: Callable[[], T | None], within: float, what: str) -> T:
        """``probe()`` once it is not None, re-checked at every arrival."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if self._failure is not None:
                raise self._failure
            found = probe()
            if found is not None:
                return found
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BenchError(f"no {what} within {within:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def quiet(self, since: int, channel: int, gap: float) -> list[Arrival]:
        """The arrivals in ``channel`` from index ``since`` on, once none came for ``gap`` s."""
        while True:
            if self._failure is not None:
                raise self._failure
            count = len(self.arrivals)
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), gap)
            except TimeoutError:
                if len(self.arrivals) == count:
                    return [a for a in self.arrivals[since:] if a.channel_id == channel]
