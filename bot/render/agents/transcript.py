"""Pure renderers of what agents do: their events (:mod:`fleet.transcript.events`) as
short lines a person reads on a phone — the agent's words as text, each tool on one line,
waiting and trouble in bold — for the live thread feed and ``logs NAME``.

All of it is the agent's: a transcript is one block quote, and every word in it that the
agent or its CLI wrote is escaped or in code (:mod:`bot.text.agent_text`), so none of it reads
as Fleetwarden's notice or becomes a link."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.render.fleet import code_block
from bot.text import agent_text
from bot.text.agent_text import escape
from fleet.transcript.events import (
    AgentEvent,
    Malformed,
    Marker,
    Oversized,
    RunEnded,
    Said,
    Text,
    ToolFailed,
    ToolUsed,
    Trouble,
    Unknown,
    Waiting,
)

SAID_CAP = 1500  # characters of one message shown in chat
TARGET_CAP = 120  # of a tool's argument
RAW_CAP = 300  # of a line shown as it was


def cut(text: str, limit: int, more: str = "") -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out (for a code
    block: nothing escaped)."""
    if len(text) <= limit:
        return text
    rest = len(text) - limit
    return f"{text[:limit].rstrip()}… ({rest:,} more characters{more})"


def inline(text: str, limit: int = TARGET_CAP) -> str:
    """``text`` as one line of inline code (backticks inside become quotes)."""
    line = " ".join(text.split())
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    quoted = line.replace("`", "'")
    return f"`{quoted}`" if line else ""


def size(n: int) -> str:
    for unit, step in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= step:
            return f"{n / step:.1f} {unit}"
    return f"{n} bytes"


def event_line(event: AgentEvent, *, agent: str = "") -> str | None:
    """One event as a chat line (markdown); ``None`` for those a reader need not see."""
    more = f": `logs {agent} --raw`" if agent else ""
    match event:
        case Said(text=text):
            return agent_text.cut(text.strip(), SAID_CAP, more) if text.strip() else None
        case ToolUsed(tool=tool, target=target):
            return f"▸ {escape(_one_line(tool))} {inline(target)}".rstrip()
        case ToolFailed(tool=tool, error=error):
            return f"✗ {escape(_one_line(tool))} failed: {inline(error, 200)}"
        case Waiting(reason=reason):
            return f"**⏸ Waiting: {agent_text.cut(_one_line(reason), 300)}**"
        case Trouble(kind=kind, reason=reason):
            reason = agent_text.cut(_one_line(reason), 300)
            return f"**⚠ {kind.value.capitalize()} error: {reason}**"
        case Oversized(head=head, size=n):
            return f"(a line of {size(n)}, too long for chat{more}) {inline(head, 80)}"
        case Marker(text=text):
            # A marker line is read from the agent's log, which the agent writes too.
            return f"_{escape(text.strip('-: ').removeprefix('fleetwarden: ').strip())}_"
        case RunEnded(ok=ok, turns=turns):
            if turns is None:
                return None
            plural = "s" if turns != 1 else ""
            return f"_the CLI reports {turns} turn{plural}, {'done' if ok else 'failed'}_"
        case Text() | Malformed() | Unknown():
            return None
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def transcript(events: Iterable[AgentEvent], *, agent: str = "") -> str:
    """Events as one chat message, quoted as the agent's: plain and unreadable lines
    gathered in code blocks, everything else a line of its own. The caller's line above
    it names the agent."""
    parts: list[str] = []
    raw: list[str] = []

    def flush() -> None:
        if raw:
            parts.append(code_block(raw))
            raw.clear()

    for event in events:
        match event:
            case Text(text=text):
                raw.append(cut(text.rstrip(), RAW_CAP))
                continue
            case Malformed(line=line):
                raw.append(cut(line.rstrip(), RAW_CAP) + "  (unreadable)")
                continue
        shown = event_line(event, agent=agent)
        if shown is not None:
            flush()
            parts.append(shown)
    flush()
    body = "\n\n".join(_join_tools(parts))
    return agent_text.quoted(body) if body else ""


def shown_count(events: Iterable[AgentEvent], *, agent: str = "") -> int:
    """How many entries :func:`transcript` shows of ``events``: its raw lines and the
    events it gives a line of their own (those a reader need not see are not counted)."""
    return sum(
        isinstance(event, Text | Malformed) or event_line(event, agent=agent) is not None
        for event in events
    )


def lately(name: str, events: Sequence[AgentEvent], asked: int, malformed: int) -> str:
    """The answer to ``logs NAME``: ``events`` (the last ``asked`` entries read) as a
    transcript under a line counting the entries it shows, as a reader counts them."""
    shown = shown_count(events, agent=name)
    if not shown:
        return f"**{name}** has done nothing readable yet (`logs {name} --raw` shows its output)."
    head = f"What **{name}** did lately ({shown} entr{'ies' if shown != 1 else 'y'}"
    more = f"; `logs {name} --lines N` for more" if len(events) >= asked else ""
    body = transcript(events, agent=name)
    return f"{head}{more}):\n\n{body}{unshown(0, malformed, name)}"


def _join_tools(parts: Sequence[str]) -> list[str]:
    """Tool lines that follow each other become one paragraph of lines."""
    joined: list[str] = []
    for part in parts:
        if joined and part.startswith(("▸", "✗")) and joined[-1].startswith(("▸", "✗")):
            joined[-1] += "\n" + part
        else:
            joined.append(part)
    return joined


def unshown(unknown: int, unreadable: int, name: str) -> str:
    """A note on what a transcript left out, or ``""``."""
    notes = []
    if unknown:
        notes.append(f"{unknown} event{'s' if unknown != 1 else ''} of kinds not shown")
    if unreadable:
        notes.append(f"{unreadable} unreadable line{'s' if unreadable != 1 else ''}")
    return f"\n\n_{' and '.join(notes)}: `logs {name} --raw` shows all._" if notes else ""
