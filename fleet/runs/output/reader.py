"""Reading an agent's log as events: its last entries (what ``logs NAME`` shows), and the
entries written since a cursor (what a live feed posts while the agent runs).

An agent's ``output.log`` holds all its runs, one after the other, each opened by
Fleetwarden's starting marker (``--- fleetwarden: NAME starting (RUNTIME) ---``, written by
:func:`fleet.runs.layout.append_marker`). Each run's lines go through a parser of its own, made
for the runtime its marker names; every marker is a :class:`Marker` event, and a line too
long to read whole an :class:`Oversized` one (never fed to a parser). Lines come from
:mod:`fleet.transcript.logtail`: ``\\r``-rewritten lines are read as their last state, and no call
reads more than a few MiB.

The functions that read the log block: code on the event loop runs them with
:func:`asyncio.to_thread` (the parsing then happens off the loop too).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fleet.runs.layout import MARKER
from fleet.transcript.events import (
    AgentEvent,
    Malformed,
    Marker,
    Oversized,
    StreamParser,
    Unknown,
)
from fleet.transcript.logtail import MAX_LINE, MAX_READ, Cursor, Line, follow, tail

log = logging.getLogger(__name__)

ParserFactory = Callable[[str | None], StreamParser]
"""A new parser for one run, given the runtime its starting marker names; ``None`` when the
run's marker was not read (it lies before what was read, or the log has none)."""

MAX_LINES = 10_000
"""Log lines :func:`last_entries` reads at most, however few entries they hold."""

_STARTING = re.compile(r"(?P<agent>[a-z][a-z0-9-]*) starting \((?P<runtime>[^()]*)\)")


def shown(event: AgentEvent) -> bool:
    """Whether a transcript shows ``event``: all but :class:`Unknown` (kept by parsers for
    the record, not for chat)."""
    return not isinstance(event, Unknown)


def marker_text(text: str) -> str | None:
    """What one of Fleetwarden's marker lines says (``NAME starting (RUNTIME)``), or
    ``None`` if ``text`` is not a marker line."""
    if not text.startswith(MARKER):
        return None
    body = text[len(MARKER) :].strip()
    return body.removesuffix("---").rstrip()


def started_runtime(marker: str) -> str | None:
    """The runtime a run's starting marker names (``NAME starting (RUNTIME)``), or ``None``
    if ``marker`` does not start a run."""
    match = _STARTING.fullmatch(marker)
    return match["runtime"] if match is not None else None


class LogParser:
    """An agent's log lines, fed in order, as events: one parser per run (a new one at each
    starting marker, from ``new_parser``), markers as :class:`Marker`, a line cut for its
    length as :class:`Oversized`. ``runtime`` is the runtime of the run the first lines
    belong to, when the caller knows it (a live feed starting after a run's marker). Counts
    what it read: ``lines``, ``malformed`` and ``oversized``. Never raises."""

    def __init__(self, new_parser: ParserFactory, runtime: str | None = None) -> None:
        self._new_parser = new_parser
        self._runtime = runtime
        self._parser: StreamParser | None = None
        self.lines = 0
        self.malformed = 0
        self.oversized = 0

    @property
    def runtime(self) -> str | None:
        """The runtime of the run being read, as its starting marker named it."""
        return self._runtime

    def feed(self, line: Line) -> list[AgentEvent]:
        """The events ``line`` carries."""
        self.lines += 1
        if line.cut or not line.whole:
            self.oversized += 1
            return [Oversized(line.text, line.size)]
        marker = marker_text(line.text)
        if marker is not None:
            runtime = started_runtime(marker)
            if runtime is not None:
                self._runtime, self._parser = runtime, None
            return [Marker(marker)]
        if self._parser is None:
            self._parser = self._new_parser(self._runtime)
        try:
            events = self._parser.feed(line.text)
        except Exception:  # a parser must not raise; if one does, the line is still shown
            log.exception("the %s parser failed on a line of %d bytes", self._runtime, line.size)
            events = [Malformed(line.text)]
        self.malformed += sum(isinstance(event, Malformed) for event in events)
        return events

    def feed_all(self, lines: Iterable[Line]) -> list[AgentEvent]:
        """The events ``lines`` carry, in order."""
        return [event for line in lines for event in self.feed(line)]


@dataclass(frozen=True, slots=True)
class Transcript:
    """The last entries of an agent's log. ``events``: oldest first, at most the count
    asked for; ``malformed`` and ``oversized``: how many of them are lines the parser could
    not read (shown raw) or lines too long to read whole (shown cut, with their size);
    ``lines``: log lines read for them; ``start``: the byte offset reading began at (more
    than 0: the log holds earlier output, not read); ``clipped``: the first event is a line
    that began before that offset (from its middle; its size a lower bound)."""

    events: tuple[AgentEvent, ...]
    malformed: int
    oversized: int
    lines: int
    start: int
    clipped: bool


@dataclass(frozen=True, slots=True)
class NewEntries:
    """What :func:`read_new` found: the events of the lines completed since the cursor,
    the cursor to read from next, and whether more is already written (read again
    without waiting)."""

    events: tuple[AgentEvent, ...]
    cursor: Cursor
    more: bool


def last_entries(
    path: Path,
    count: int,
    new_parser: ParserFactory,
    *,
    keep: Callable[[AgentEvent], bool] = shown,
    max_read: int = MAX_READ,
    max_line: int = MAX_LINE,
) -> Transcript:
    """The last ``count`` entries (events ``keep`` accepts) of the log at ``path``, read
    from at most ``max_read`` bytes and :data:`MAX_LINES` lines back from its end. Blocks:
    run it with :func:`asyncio.to_thread` from the event loop."""
    if count <= 0:
        return Transcript((), 0, 0, 0, 0, clipped=False)
    want = min(max(2 * count, 64), MAX_LINES)
    while True:
        read = tail(path, want, max_read=max_read, max_line=max_line)
        reader = LogParser(new_parser)
        events: list[AgentEvent] = []
        partial: list[AgentEvent] = []  # the events of a first line read from its middle
        for line in read.lines:
            found = reader.feed(line)
            if not line.whole:
                partial = found
            events.extend(event for event in found if keep(event))
        # Lines carry zero, one or several events: read further back until enough.
        if len(events) >= count or len(read.lines) < want or want >= MAX_LINES:
            break
        want = min(want * 4, MAX_LINES)
    events = events[-count:]
    return Transcript(
        tuple(events),
        malformed=sum(isinstance(event, Malformed) for event in events),
        oversized=sum(isinstance(event, Oversized) for event in events),
        lines=len(read.lines),
        start=read.start,
        clipped=bool(events) and any(events[0] is event for event in partial),
    )


def read_new(
    path: Path,
    cursor: Cursor,
    reader: LogParser,
    *,
    final: bool = False,
    keep: Callable[[AgentEvent], bool] = shown,
    max_read: int = MAX_READ,
    max_line: int = MAX_LINE,
) -> NewEntries:
    """The events (those ``keep`` accepts) of the lines completed in the log at ``path``
    since ``cursor``, read by ``reader`` (which keeps its run's parser between calls),
    reading at most ``max_read`` bytes. A line still being written is held back until its
    break arrives, or until ``final`` says the run has ended. Blocks: run it with
    :func:`asyncio.to_thread` from the event loop, one call at a time per ``reader``.

    A live feed starts at the offset a launch returned, ``Cursor(offset)``, with
    ``LogParser(new_parser, runtime)``, polls every second or so while the agent runs, once
    more with ``final=True`` after it ended, and again at once while ``more``."""
    found = follow(path, cursor, final=final, max_read=max_read, max_line=max_line)
    events = [event for event in reader.feed_all(found.lines) if keep(event)]
    return NewEntries(tuple(events), found.cursor, found.more)
