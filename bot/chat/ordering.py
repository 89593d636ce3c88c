"""Answers before the news they cause: while a command about an agent is being handled and
answered, the notices about that agent wait, and follow the answer in the order they came.

The router holds the agents a command names (:meth:`Ordering.answering`) from the moment it
has parsed the command until its answer is posted. The notifier offers every notice to
:meth:`Ordering.defer` first; a notice about a held agent — or about an agent whose earlier
notices still wait — is queued, and its poster goes on at once. Nothing waits under a lock:
the handler itself may have caused the notice and await its post (the fleet awaits its
notice board). When the last hold on an agent ends, the queue is posted in order, by one
flusher task, before the router's answer counts as done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Post = Callable[[], Awaitable[object]]


@dataclass(slots=True)
class _Waiting:
    agents: frozenset[str]
    post: Post


class Ordering:
    """Holds agents while their commands are answered, and the notices about them meanwhile.

    One per app, shared by the router and the notifier."""

    def __init__(self) -> None:
        self._held: Counter[str] = Counter()
        self._queue: list[_Waiting] = []  # the one being posted stays first until it is done
        self._flusher: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def answering(self, agents: Iterable[str]) -> AsyncIterator[None]:
        """Hold ``agents`` for the block (a command about them is handled and answered in
        it); at its end post what waited on them, in order."""
        names = frozenset(agents)
        self._held.update(names)
        try:
            yield
        finally:
            for name in names:
                self._held[name] -= 1
                if self._held[name] <= 0:
                    del self._held[name]
            if names and self._queue:
                # Shielded: a cancelled command must not leave its notices stuck behind it.
                await asyncio.shield(self._flush())

    def holds(self, agent: str) -> bool:
        """Whether a command about ``agent`` is being handled or answered now."""
        return self._held[agent] > 0

    def defer(self, agents: Iterable[str], post: Post) -> bool:
        """Queue ``post`` if it must wait (one of ``agents`` is held, or has notices
        waiting); ``False`` if it may go now."""
        names = frozenset(agents)
        if not names or not self._busy(names):
            return False
        self._queue.append(_Waiting(names, post))
        return True

    async def drain(self) -> None:
        """Wait for the notices being posted (at stop)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    def _busy(self, names: frozenset[str]) -> bool:
        return any(self._held[n] > 0 for n in names) or any(names & w.agents for w in self._queue)

    def _flush(self) -> asyncio.Task[None]:
        """The one flusher task: started if none runs (a running one takes on whatever
        became free, since it looks again after each post)."""
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._post_free(), name="notices-after-answers")
        return self._flusher

    async def _post_free(self) -> None:
        while (waiting := self._next_free()) is not None:
            try:
                await waiting.post()
            except Exception:  # the notifier logs its own failures; this is a bug
                log.exception("could not post a notice that waited for an answer")
            finally:
                self._queue.remove(waiting)

    def _next_free(self) -> _Waiting | None:
        """The first waiting notice whose agents are not held and have no earlier notice
        waiting."""
        seen: set[str] = set()
        for waiting in self._queue:
            if not (waiting.agents & seen) and not any(self._held[n] for n in waiting.agents):
                return waiting
            seen |= waiting.agents
        return None
