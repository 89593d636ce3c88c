"""Typing notices kept alive: one per place however many blocks want it, refreshed before
the medium lets it lapse, never an error for the caller.

A chat service shows "typing…" for a while after each request (Matrix: the timeout the
request names; Discord: about ten seconds). :class:`TypingKeeper` sends the first request
when the first block for a place starts, repeats it every ``refresh`` seconds while any
block for that place runs, and says "stopped" when the last one ends — so a slow command
and an agent's pending output in the same room never end each other's notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from connectors.errors import ConnectorError
from connectors.inbox import cancel_and_wait

log = logging.getLogger(__name__)

Say = Callable[[str, bool], Awaitable[None]]
"""Tell the service the bot is (``True``) or no longer is (``False``) typing in a place."""


@dataclass(slots=True)
class _Place:
    blocks: int
    task: asyncio.Task[None]


class TypingKeeper:
    """Typing notices per place (a room, a channel) for one connector."""

    def __init__(self, say: Say, *, refresh: float, name: str) -> None:
        self._say = say
        self._refresh = refresh
        self._name = name
        self._places: dict[str, _Place] = {}

    def typing(self, place: str) -> contextlib.AbstractAsyncContextManager[None]:
        """The bot is typing in ``place`` while the block runs."""
        return self._block(place)

    @contextlib.asynccontextmanager
    async def _block(self, place: str) -> AsyncIterator[None]:
        held = self._places.get(place)
        if held is None:
            task = asyncio.create_task(self._keep(place), name=f"typing-{self._name}")
            held = self._places[place] = _Place(0, task)
        held.blocks += 1
        try:
            yield
        finally:
            held.blocks -= 1
            if held.blocks == 0 and self._places.get(place) is held:
                del self._places[place]
                await cancel_and_wait(held.task)
                await self._tell(place, False)

    async def stop(self) -> None:
        """End every notice's refreshing (the connector stops): the service lets them lapse."""
        places, self._places = list(self._places.values()), {}
        for held in places:
            await cancel_and_wait(held.task)

    async def _keep(self, place: str) -> None:
        while True:
            await self._tell(place, True)
            await asyncio.sleep(self._refresh)

    async def _tell(self, place: str, on: bool) -> None:
        try:
            await self._say(place, on)
        except ConnectorError as exc:  # cosmetic: the command goes on regardless
            log.debug("%s: typing notice in %s not sent: %s", self._name, place, exc)
        except Exception:
            log.warning("%s: typing notice in %s failed", self._name, place, exc_info=True)
