"""What agents do, posted as they do it: each running agent's work in its threads, a
summary when a run ends, and the watchdog's news.

While a run lives, its output is read about once a second (off the event loop) through its
runtime's parser (:mod:`fleet.transcript`), and what a person would read — its messages,
a line per tool, waiting and trouble in bold — is posted into the agent's threads. Tool
lines are batched: everything that arrives within :attr:`FeedSettings.batch` seconds of the
first becomes one message, and posts to one agent are at least :attr:`FeedSettings.gap`
apart, so a busy agent never exceeds a chat service's rate limits (Discord allows 5
messages per 5 s in a channel; Synapse's default is about one per second after a burst).
When the run ends, the rest of its output is posted, then its summary — in its threads and
the home room. Posts about an agent whose command is being answered wait for that answer
(:mod:`bot.chat.ordering`, through the notice board), so a run that ended at once is told after
its spawn's answer.

One reader serves the whole fleet: each look (:meth:`AgentFeed.look`, a scheduler job every
:attr:`FeedSettings.poll` seconds) stats every followed log in one trip off the event loop
and wakes only the follows whose log changed (or whose batch waits to go out), so an idle
fleet of a thousand agents costs a thousand stats a second, not a thousand reads and
thread hops. Each follow still reads and posts in its own task, in
order, so a slow post about one agent never holds up another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bot.render import fleet as render
from bot.render.agents import runs as render_runs
from bot.render.agents.transcript import transcript
from connectors.base import Tone
from fleet.events import QUIET, EventKind, FleetEvent
from fleet.notices import Delivery, Notice, starter
from fleet.runs.output.reader import LogParser, read_new
from fleet.runs.output.reading import RunOutput
from fleet.supervisor.interfaces import FleetView
from fleet.timing.clock import Clock
from fleet.transcript.events import (
    AgentEvent,
    Marker,
    RunEnded,
    Said,
    Trouble,
    Unknown,
    Waiting,
)
from fleet.transcript.logtail import Cursor, size_of
from fleet.transcript.story import Outcome

log = logging.getLogger(__name__)

Post = Callable[[Notice], Awaitable[Delivery]]
Typing = Callable[[str], AbstractAsyncContextManager[None]]
TaskLine = Callable[[int], Awaitable[str | None]]
"""The spend line of the task a run (by id) was done for, ``None`` for none."""
"""Show the bot typing in an agent's threads while the block runs."""
_READ_LIMIT = 2 * 1024 * 1024  # bytes of new output read at once (a longer line is cut)
_FINAL_READS = 16  # reads at most, at a run's end: 32 MiB; the rest is in `logs`
_MESSAGE_CAP = 3000  # characters in one feed message before it is sent regardless
_ALERTS = frozenset(
    {Outcome.FAILED.value, Outcome.TIMED_OUT.value, Outcome.CUT_OFF.value}
)  # the ends that wake someone: a failure, a limit reached
_TONES: dict[str, Tone] = {
    Outcome.FINISHED.value: "ok",
    Outcome.FAILED.value: "error",
    Outcome.TIMED_OUT.value: "error",
    Outcome.CUT_OFF.value: "warning",
    Outcome.RESTARTED.value: "warning",
    Outcome.STOPPED.value: "info",
    Outcome.LOST.value: "info",
}


@dataclass(frozen=True, slots=True)
class FeedSettings:
    poll: float = 1.0  # seconds between reads of a running agent's output
    batch: float = 3.0  # events within this long of the first go out together
    gap: float = 2.0  # at least this long between two posts about one agent


@dataclass(slots=True)
class _Follow:
    """One run being followed."""

    agent: str
    run_id: int
    output: RunOutput
    cursor: Cursor
    reader: LogParser
    pending: list[AgentEvent] = field(default_factory=list)
    first_at: float | None = None
    last_post: float = float("-inf")
    task: asyncio.Task[None] | None = None
    typing: AsyncExitStack | None = None  # open while a batch waits to be posted
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set by a look
    seen: int = -1  # the log's size when a look last woke this follow; -1: read again


class AgentFeed:
    """Follows every run the fleet starts and posts what it does (see the module)."""

    def __init__(
        self,
        fleet: FleetView,
        post: Post,
        clock: Clock,
        settings: FeedSettings | None = None,
        *,
        typing: Typing | None = None,
        task_line: TaskLine | None = None,
    ) -> None:
        """``typing``: while a batch of an agent's output waits to be posted, the bot shows
        it is typing in that agent's threads (one notice per batch, none for output posted
        at once); ``task_line``: the spend line of the task a run was done for, which its
        summary shows (``None``: no register)."""
        self._task_line = task_line
        self._fleet = fleet
        self._post = post
        self._typing = typing
        self._clock = clock
        self._settings = settings or FeedSettings()
        self._follows: dict[str, _Follow] = {}

    @property
    def poll(self) -> float:
        """Seconds between two looks at the followed logs (:meth:`look`)."""
        return self._settings.poll

    async def on_fleet_event(self, event: FleetEvent) -> None:
        if event.kind in QUIET:  # a turn's end, a pause: for those who wait on them
            return
        if event.kind is EventKind.STARTED and event.run_id is not None:
            await self._start(event.agent, event.run_id)
        elif event.kind is EventKind.ENDED:
            await self._end(event)
        elif not event.by_operator and event.kind is not EventKind.STARTED:
            await self._post_event(event)

    async def _post_event(self, event: FleetEvent) -> None:
        """The watchdog's news (and an end no report tells of), in the agent's threads; a
        stall, a failure and the watchdog giving up are alerts."""
        tone = render.fleet_event_tone(event)
        alert = tone == "error" or event.kind is EventKind.STALLED
        await self._post(
            Notice(
                render.fleet_event(event),
                tone=tone,
                agents=(event.agent,),
                home_too=False,
                alert=alert,
                by=await self._starter(event) if alert else None,
            )
        )

    async def _starter(self, event: FleetEvent) -> str | None:
        """Who started the run ``event`` is about (the run followed, if it names none)."""
        run_id = event.run_id
        follow = self._follows.get(event.agent)
        if run_id is None and follow is not None:
            run_id = follow.run_id
        if run_id is None:
            return None
        try:
            story = await self._fleet.outputs.stories.story(run_id)
        except Exception:  # who to wake is a nicety: the alert goes out regardless
            log.warning("could not read who started run %s", run_id, exc_info=True)
            return None
        start = None if story is None else story.report.start
        return None if start is None else starter(start.trigger)

    async def follow_running(self) -> None:
        """Follow the runs that were running before Fleetwarden started (reattached),
        from what they write next."""
        for agent, run_id in await self._fleet.outputs.open_runs():
            if agent not in self._follows:
                await self._start(agent, run_id, from_end=True)

    async def stop(self) -> None:
        """Stop following (the agents keep running), posting what was still pending."""
        follows = list(self._follows.values())
        self._follows.clear()
        for follow in follows:
            if follow.task is not None:
                follow.task.cancel()
        await asyncio.gather(*(f.task for f in follows if f.task), return_exceptions=True)
        for follow in follows:
            try:
                await self._read(follow, final=False)
                if follow.pending:
                    await self._flush(follow, asyncio.get_running_loop().time())
            except Exception:
                log.exception("feed of %s: could not post its last output", follow.agent)
            await self._stop_typing(follow)

    # -- following one run ---------------------------------------------------------------

    async def _start(self, agent: str, run_id: int, *, from_end: bool = False) -> None:
        old = self._follows.pop(agent, None)
        if old is not None and old.task is not None:
            old.task.cancel()
        output = await self._fleet.outputs.of_run(run_id)
        if output is None:
            return
        offset = output.offset
        if from_end:
            offset = max(offset, await asyncio.to_thread(size_of, output.log))
        parser = output.parser
        reader = LogParser(lambda _runtime: parser, runtime="")
        follow = _Follow(agent, run_id, output, Cursor(offset), reader)
        follow.wake.set()  # the first read at once
        follow.task = asyncio.create_task(self._loop(follow), name=f"feed-{agent}")
        self._follows[agent] = follow

    async def look(self) -> None:
        """The one reader of every followed log (see the module), a scheduler job every
        :attr:`poll` seconds: the follows whose log changed size, or whose batch waits,
        are woken."""
        follows = list(self._follows.values())
        if not follows:
            return
        try:
            sizes = await asyncio.to_thread(_sizes, [f.output.log for f in follows])
        except Exception:  # an unreadable state dir: say so, and try again next look
            log.exception("feed: could not look at the agents' logs")
            sizes = [-1] * len(follows)
        for follow, size in zip(follows, sizes, strict=True):
            if size != follow.seen or follow.pending:
                follow.seen = size
                follow.wake.set()

    async def _loop(self, follow: _Follow) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await follow.wake.wait()
            follow.wake.clear()
            try:
                await self._read(follow, final=False)
                now = loop.time()
                if self._due(follow, now):
                    await self._flush(follow, now)
                elif follow.pending:
                    await self._show_typing(follow)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad read must not end the feed of a live agent
                log.exception("feed of %s: could not read its output", follow.agent)
                follow.seen = -1  # read again at the next look

    def _due(self, follow: _Follow, now: float) -> bool:
        if not follow.pending or now - follow.last_post < self._settings.gap:
            return False
        assert follow.first_at is not None
        urgent = any(isinstance(e, Said | Waiting | Trouble) for e in follow.pending)
        size = sum(len(str(e)) for e in follow.pending)
        return urgent or size > _MESSAGE_CAP or now - follow.first_at >= self._settings.batch

    async def _read(self, follow: _Follow, *, final: bool) -> None:
        """Read what the run wrote since the last read: while more is written, on (a run's
        end reads on to the end of its output, within :data:`_FINAL_READS` reads)."""
        for _ in range(_FINAL_READS if final else 4):
            found = await asyncio.to_thread(
                read_new,
                follow.output.log,
                follow.cursor,
                follow.reader,
                final=final,
                keep=_shown,
                max_read=_READ_LIMIT,
            )
            follow.cursor = found.cursor
            if found.events and follow.first_at is None:
                follow.first_at = asyncio.get_running_loop().time()
            follow.pending.extend(found.events)
            if not found.more:
                return
        follow.seen = -1  # more than these reads take: on at the next look

    async def _show_typing(self, follow: _Follow) -> None:
        if self._typing is None or follow.typing is not None:
            return
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(self._typing(follow.agent))
        except Exception:  # cosmetic: the feed goes on
            log.warning("feed of %s: could not show typing", follow.agent, exc_info=True)
            return
        follow.typing = stack

    async def _stop_typing(self, follow: _Follow) -> None:
        stack, follow.typing = follow.typing, None
        if stack is not None:
            try:
                await stack.aclose()
            except Exception:
                log.warning("feed of %s: could not stop typing", follow.agent, exc_info=True)

    async def _flush(self, follow: _Follow, now: float) -> None:
        await self._stop_typing(follow)
        events, follow.pending, follow.first_at = follow.pending, [], None
        text = transcript(events, agent=follow.agent)
        follow.last_post = now
        if not text:
            return
        text = f"**{follow.agent}** ›\n{text}"  # the quote under it is the agent's
        tone: Tone | None = (
            "warning" if any(isinstance(e, Waiting | Trouble) for e in events) else None
        )
        await self._post(Notice(text, tone=tone, agents=(follow.agent,), home_too=False, feed=True))

    # -- the end of a run ----------------------------------------------------------------

    async def _end(self, event: FleetEvent) -> None:
        """The rest of the run's output, then its summary. A run that ended while its
        spawn waited was told of in the spawn's answer: ``early``."""
        await self._tell_end(event, early=event.at_once and not event.by_operator)

    async def _tell_end(self, event: FleetEvent, *, early: bool) -> None:
        follow = self._follows.get(event.agent)
        if follow is not None and follow.run_id == event.run_id:
            del self._follows[event.agent]
            if follow.task is not None:
                follow.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follow.task
            try:
                await self._read(follow, final=True)
                if follow.pending:
                    loop = asyncio.get_running_loop()
                    await asyncio.sleep(
                        max(0.0, follow.last_post + self._settings.gap - loop.time())
                    )
                    await self._flush(follow, loop.time())
            except Exception:
                log.exception("feed of %s: could not read the end of its output", event.agent)
            await self._stop_typing(follow)
        story = (
            await self._fleet.outputs.stories.story(event.run_id)
            if event.run_id is not None
            else None
        )
        if story is None or story.report.end is None:
            if not event.by_operator:
                await self._post_event(event)
            return
        end = story.report.end
        task = None
        if self._task_line is not None and event.run_id is not None:
            task = await self._task_line(event.run_id)
        await self._post(
            Notice(
                render_runs.summary(story, self._clock.now(), task=task),
                tone=_TONES.get(end.outcome, "info"),
                agents=(event.agent,),
                # An operator's own stop, or a spawn that ended at once, was answered where
                # it was asked: the summary goes to the agent's threads only.
                home_too=not (event.by_operator or early),
                feed=event.by_operator or early,
                alert=end.outcome in _ALERTS,
                by=starter(story.report.start.trigger) if story.report.start else None,
            )
        )


def _sizes(paths: list[Path]) -> list[int]:
    """Each log's size (0 while it does not exist): one trip off the event loop for all."""
    return [size_of(path) for path in paths]


def _shown(event: AgentEvent) -> bool:
    """Whether the live feed posts ``event``: not the CLI's end (the summary has it), not
    unknown kinds, not Fleetwarden's own markers."""
    return not isinstance(event, RunEnded | Unknown | Marker)
