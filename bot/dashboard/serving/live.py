"""Live updates for every open dashboard from one source: a topic (a page: ``fleet``,
``budgets``, ``agent:NAME``…) is rendered once a tick while anyone watches it, and each
change goes to all its watchers. Fifty tabs on the fleet page cost one rendering a second,
not fifty ledger polls; a tab that reads slowly only ever has the latest fragment waiting
(older ones are dropped), so memory stays bounded.

The hub also keeps the set of live sessions fresh while anyone watches (one ledger query
every :data:`SESSIONS_EVERY` seconds, :meth:`LiveHub.refresh_sessions` as a scheduler job)
so that an open stream whose session was revoked is closed within that time.

Streams are capped in all and per session, so that one signed-in browser (or a script with
its cookie) cannot hold every stream and leave the others none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from enum import Enum

log = logging.getLogger(__name__)

Render = Callable[[str], Awaitable[str]]
"""A topic's fragment, rendered now."""
LiveSessions = Callable[[], Awaitable[set[str]]]

TICK = 0.5
"""Seconds between two renderings of an agent's page (its transcript grows as it works)."""
TICKS = {"fleet": 2.0}
"""Other pages' ticks; a page not named here is rendered every :data:`SLOW_TICK`. An
agent's start, end or stall renders the fleet page and its own at once (:meth:`poke`):
the tick only refreshes heartbeat ages and the day's cost. At 200 agents a fleet
rendering costs ~30 ms, and every tick sends each watcher the whole table."""
SLOW_TICK = 2.0
SESSIONS_EVERY = 2.0
MAX_WATCHERS = 500
"""Open streams at most, over all topics; more are refused (a 503), not queued."""
MAX_PER_SESSION = 16
"""Open streams at most of one session. A browser streams six pages of a site at once over
HTTP/1.1; the rest leaves room for streams a reload has not yet seen end."""


class Full(Enum):
    """Why a stream was refused."""

    HUB = "every stream the dashboard serves is taken"
    SESSION = "this session has every stream it may open"


class Watcher:
    """One open stream: the latest fragment not yet sent, if any."""

    def __init__(self, topic: str, session: str = "") -> None:
        self.topic = topic
        self.session = session
        self.closed = False  # the hub stopped: the stream ends
        self.counted = True  # against its session's cap, until it leaves
        self._latest: str | None = None
        self._ready = asyncio.Event()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    def offer(self, html: str) -> None:
        self._latest = html  # a fragment not yet sent is replaced: only the newest matters
        self._ready.set()

    async def next(self, within: float) -> str | None:
        """The newest fragment, or ``None`` after ``within`` seconds without one."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), within)
        self._ready.clear()
        html, self._latest = self._latest, None
        return html


class LiveHub:
    """Topics, their watchers and the tasks rendering them."""

    def __init__(
        self, render: Render, sessions: LiveSessions, *, tick: float | None = None
    ) -> None:
        self._render = render
        self._sessions = sessions
        self._tick = tick  # one tick for every topic (tests); None: each topic's own
        self._pokes: dict[str, asyncio.Event] = {}
        self._watchers: dict[str, set[Watcher]] = {}
        self._sessions_watching: dict[str, int] = {}  # open streams of each session
        self._latest: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.live_sessions: set[str] | None = None  # None until first read
        self.renders = 0  # fragments rendered, all topics (for the benchmark)

    @property
    def watching(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    def watching_of(self, session: str) -> int:
        return self._sessions_watching.get(session, 0)

    def watch(self, topic: str, session: str = "") -> Watcher | Full:
        """A new watcher of ``topic`` for ``session`` (given the latest fragment at once),
        or why not: :data:`MAX_WATCHERS` streams are open, or :data:`MAX_PER_SESSION` of
        this session's."""
        if self.watching >= MAX_WATCHERS:
            return Full.HUB
        if session and self.watching_of(session) >= MAX_PER_SESSION:
            return Full.SESSION
        watcher = Watcher(topic, session)
        if session:
            self._sessions_watching[session] = self.watching_of(session) + 1
        self._watchers.setdefault(topic, set()).add(watcher)
        if (html := self._latest.get(topic)) is not None:
            watcher.offer(html)
        if topic not in self._tasks:
            self._tasks[topic] = asyncio.create_task(self._run(topic), name=f"dashboard-{topic}")
        return watcher

    def poke(self, topic: str) -> None:
        """Render ``topic`` now, if anyone watches it (something it shows changed)."""
        if (poked := self._pokes.get(topic)) is not None:
            poked.set()

    def tick(self, topic: str) -> float:
        if self._tick is not None:
            return self._tick
        return TICK if topic.startswith("agent:") else TICKS.get(topic, SLOW_TICK)

    def leave(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.topic)
        if watchers is not None:
            watchers.discard(watcher)
        if watcher.counted and watcher.session:
            watcher.counted = False
            left = self.watching_of(watcher.session) - 1
            if left > 0:
                self._sessions_watching[watcher.session] = left
            else:
                self._sessions_watching.pop(watcher.session, None)

    async def stop(self) -> None:
        """End every stream (each watcher is closed) and the rendering tasks."""
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.close()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, topic: str) -> None:
        poked = self._pokes.setdefault(topic, asyncio.Event())
        try:
            while self._watchers.get(topic):
                try:
                    html = await self._render(topic)
                    self.renders += 1
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("dashboard: rendering %s failed", topic)
                else:
                    if html != self._latest.get(topic):
                        self._latest[topic] = html
                        for watcher in list(self._watchers.get(topic, ())):
                            watcher.offer(html)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poked.wait(), self.tick(topic))
                poked.clear()
        finally:
            self._pokes.pop(topic, None)
            self._tasks.pop(topic, None)
            self._latest.pop(topic, None)  # nobody watches: a later watcher waits for fresh
            self._watchers.pop(topic, None)

    async def refresh_sessions(self) -> None:
        """Read the live sessions again, while anyone watches a page: a scheduler job every
        :data:`SESSIONS_EVERY` seconds."""
        if not self._tasks:
            return
        try:
            self.live_sessions = await self._sessions()
        except Exception:
            log.exception("dashboard: reading the live sessions failed")
