"""The one event model every runtime's output is read into.

Each agent CLI prints its own stream (Claude Code's ``stream-json``, Codex's
``exec --json``, pi's ``--mode json``, opencode's ``--format json``); its parser
(:class:`StreamParser`) turns each line into these few typed events, so that chat shows
every agent's work in the same words. A line no parser understands is never lost: it
becomes :class:`Text`, :class:`Malformed` or :class:`Unknown`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class ErrorKind(enum.StrEnum):
    """What kind of trouble an agent's CLI reported."""

    AUTH = "auth"  # no credentials, or the provider refused them
    RATE_LIMIT = "rate limit"  # the provider said to slow down, or a quota ran out
    NETWORK = "network"  # the provider could not be reached
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Said:
    """The agent said something (an assistant message's text)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolUsed:
    """The agent used a tool: its name and the one argument that matters (the file, the
    command, the URL, the pattern), ``""`` when there is none."""

    tool: str
    target: str = ""


@dataclass(frozen=True, slots=True)
class ToolFailed:
    """A tool call failed; ``error`` is the tool's own message, first line."""

    tool: str
    error: str


@dataclass(frozen=True, slots=True)
class Waiting:
    """The agent asked for permission or waits for input; ``reason`` says for what."""

    reason: str


@dataclass(frozen=True, slots=True)
class Trouble:
    """An error the CLI reported, with its own reason."""

    kind: ErrorKind
    reason: str


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The CLI's own word that its run is over. ``turns``, ``duration_ms`` and
    ``cost_usd`` are what the CLI reports, when it does (Fleetwarden's metering is what
    summaries count on; these are shown beside it)."""

    ok: bool
    turns: int | None = None
    duration_ms: int | None = None
    cost_usd: float | None = None
    result: str | None = None  # the final answer, when the CLI repeats it at the end


@dataclass(frozen=True, slots=True)
class Text:
    """A plain line of output (a ``command`` agent's, the stub's, or a CLI's stderr)."""

    text: str


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line that looked like the CLI's JSON but was not (cut, or truncated); kept as
    raw text and counted."""

    line: str


@dataclass(frozen=True, slots=True)
class Oversized:
    """A line too long to read whole (``size`` bytes); ``head`` is its beginning."""

    head: str
    size: int


@dataclass(frozen=True, slots=True)
class Marker:
    """One of Fleetwarden's own lines in an agent's log (a run starting, a run's end)."""

    text: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """A JSON event of a type the parser does not know; kept, not shown by default."""

    type: str
    line: str


AgentEvent = (
    Said
    | ToolUsed
    | ToolFailed
    | Waiting
    | Trouble
    | RunEnded
    | Text
    | Malformed
    | Oversized
    | Marker
    | Unknown
)


class StreamParser(Protocol):
    """Reads one runtime's output, a line at a time. Stateful (a tool's result is matched
    to its call); one parser per run. Never raises on any input."""

    def feed(self, line: str) -> list[AgentEvent]:
        """The events ``line`` (without its line break) carries: none, one or several."""
        ...


class PlainText:
    """The parser of runtimes that print plain text (``command``, ``stub``, a TUI's log):
    each non-blank line is :class:`Text`."""

    def feed(self, line: str) -> list[AgentEvent]:
        return [Text(line)] if line.strip() else []
