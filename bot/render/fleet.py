"""Pure renderers: fleet facts in, markdown out. Every connector gets the same content."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from bot.text.agent_text import quoted, quotes_escaped, said
from connectors.base import Tone
from fleet.ledger import UsageTotal
from fleet.metering import units
from fleet.metering.counting.events import Tokens
from fleet.model import AgentSpec, AgentState, ExitInfo
from fleet.supervisor.fleet import AgentStatus, EventKind, FleetEvent, RosterDiff

DASH = "–"
_UNPRICED = "—"
_WINDOW_WORDS = {
    "5h": "in the last 5 hours",
    "today": "today",
    "7d": "in the last 7 days",
    "30d": "in the last 30 days",
}


def duration(seconds: float) -> str:
    """A short human duration: ``42s``, ``3m05s``, ``2h07m``, ``3d04h``."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def compact(n: int | None) -> str:
    """A short token count (:func:`fleet.metering.units.tokens_short`); a dash for unknown."""
    return DASH if n is None else units.tokens_short(n)


def money(usd: float | None) -> str:
    """A cost in dollars (:func:`fleet.metering.units.usd`); a dash if unpriced."""
    if usd is None:
        return _UNPRICED
    return units.usd(usd)


def ago(when: datetime | None, now: datetime) -> str:
    return DASH if when is None else f"{duration((now - when).total_seconds())} ago"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GFM table; pipes and newlines inside cells are escaped."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ") or " "

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def code_block(lines: Sequence[str], info: str = "text") -> str:
    """A fenced block that no line of the content can close early (on Discord too:
    :func:`connectors.markdown_discord.to_discord` rewrites its fence)."""
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([fence + info, *lines, fence])


def ps(statuses: Sequence[AgentStatus], now: datetime, drift: Sequence[str] = ()) -> str:
    """The fleet table. ``drift``: sessions on our backends that no agent accounts for."""
    drift_note = (
        f"\n\nDrift: {', '.join(drift)} — running on Fleetwarden's tmux server but unknown to "
        "it; left running. Stop them by hand, or add them to the roster."
        if drift
        else ""
    )
    if not statuses:
        return "No agents yet. Start one with `spawn NAME --prompt TEXT`." + drift_note
    hosts = any(s.host != "local" for s in statuses)
    if hosts:  # grouped by host, this machine's first; unreachable hosts' agents on top
        statuses = sorted(statuses, key=lambda s: (s.host_down is None, s.host != "local", s.host))
    rows = []
    for s in statuses:
        live = s.state.is_live
        uptime = duration((now - s.started_at).total_seconds()) if live and s.started_at else DASH
        state = s.state.value if live or s.exit_code is None else f"{s.state.value} ({s.exit_code})"
        if s.queued_until is not None:
            state += f", queued until {s.queued_until:%H:%M} UTC"
        if s.frozen is not None and live:
            state = f"frozen: {s.frozen}"
        if s.removed_from_roster is not None:
            state += ", not in roster"
        if s.host_down is not None and live:
            state = f"unknown ({s.host_down})"
        rows.append(
            [
                s.name,
                s.runtime + (f" / {s.model}" if s.model else ""),
                state,
                str(s.pid) if s.pid is not None else DASH,
                uptime,
                ago(s.last_heartbeat, now) if live else DASH,
                ago(s.last_activity, now),
                compact(s.tokens_today),
                DASH if s.usd_today is None else units.usd(s.usd_today),
                str(s.egress_refused) if s.egress_refused else DASH,
            ]
        )
        if hosts:
            rows[-1].insert(1, s.host)
    live_count = sum(1 for s in statuses if s.state.is_live)
    summary = f"{live_count} of {len(statuses)} agent{'s' if len(statuses) != 1 else ''} running"
    headers = [
        "name",
        "runtime",
        "state",
        "pid",
        "uptime",
        "heartbeat",
        "last activity",
        "tokens today",
        "cost today",
        "egress refused",
    ]
    if hosts:
        headers.insert(1, "host")
    return table(headers, rows) + f"\n\n{summary}" + drift_note


def problems(lines: Sequence[str]) -> str:
    """What is wrong beyond the agents, as a paragraph after the fleet table ("" if nothing)."""
    if not lines:
        return ""
    return "\n\n" + "\n".join(f"⚠️ Problem: {line}" for line in lines)


def spawned(status: AgentStatus, started: bool, pid: int | None = None) -> str:
    if started:
        pid = pid if pid is not None else status.pid
        return f"Agent **{status.name}** started ({status.runtime}), pid {pid}."
    since = f", pid {status.pid}" if status.pid is not None else ""
    return (
        f"**{status.name}** is already {status.state.value}{since} — not starting a second one. "
        f"Use `restart {status.name}` to relaunch it."
    )


WHY_CAP = 500  # characters of an exit reason, on its one line


def stopped(name: str, info: ExitInfo) -> str:
    return f"Stopped **{name}** ({said(info.reason, WHY_CAP)})."


def restarted(status: AgentStatus) -> str:
    return f"Restarted **{status.name}**, now pid {status.pid}."


def logs(name: str, lines: Sequence[str], requested: int) -> str:
    if not lines:
        return f"**{name}** has written no output yet."
    head = f"Last {len(lines)} line{'s' if len(lines) != 1 else ''} of **{name}**"
    more = "" if len(lines) < requested else f" (use `logs {name} --lines N` for more)"
    return f"{head}{more}:\n\n{quoted(code_block(lines))}"


def sent(name: str, *, here: bool = True) -> str:
    """``send``'s answer; ``here`` ``False``: asked where the agent's output never comes
    (a shell), so where it does is said instead."""
    if not here:
        return (
            f"Sent to **{name}**; what it does shows in chat (on the console, or in its "
            f"thread), where `logs {name}` reads it too."
        )
    return f"Sent to **{name}**; what it does follows (`logs {name}` shows it too)."


def whoami(user: str, role: str, connector: str) -> str:
    return f"You are `{user}` on {connector}, role **{role}**."


def fleet_event_tone(event: FleetEvent) -> Tone:
    """How the notice of ``event`` should feel."""
    if event.kind in (EventKind.GAVE_UP, EventKind.REFUSED) or event.state is AgentState.FAILED:
        return "error"
    if event.kind in (EventKind.STALLED, EventKind.RESTARTED):
        return "warning"
    if event.state is AgentState.EXITED:
        return "ok"
    return "info"


def fleet_event(event: FleetEvent) -> str:
    why = quotes_escaped(event.message)  # an error of ours, maybe quoting a host
    if event.kind is EventKind.STALLED:
        return f"Agent **{event.agent}** stalled: {why}."
    if event.kind is EventKind.RESTARTED:
        return f"Agent **{event.agent}** restarted by the watchdog: {why}."
    if event.kind is EventKind.GAVE_UP:
        return f"Agent **{event.agent}** keeps failing; not restarting it again: {why}."
    if event.kind is EventKind.REFUSED:
        return f"Agent **{event.agent}** could not start at {why}."
    if event.state is AgentState.FAILED:  # the message is how it exited: its host may say
        return f"Agent **{event.agent}** failed: {said(event.message, WHY_CAP)}."
    if event.state is AgentState.EXITED:
        return f"Agent **{event.agent}** finished: {said(event.message, WHY_CAP)}."
    return f"Agent **{event.agent}** is {event.state.value}: {why}."


def screen(name: str, text: str) -> str:
    lines = text.rstrip("\n").splitlines()
    if not lines:
        return f"**{name}**'s screen is empty."
    return f"**{name}** now:\n\n{quoted(code_block(lines))}"


ROLE_SHOWN = 80
"""The most of an agent's ``role:`` (what it is for) the roster's table shows."""


def roster(specs: Sequence[AgentSpec]) -> str:
    """The roster's agents; what each is for (``role:``) and whom it may message
    (``talks_to``) when any agent says so."""
    if not specs:
        return "The roster is empty: agents are started ad hoc with `spawn NAME`."
    peers = any(s.purpose or s.talks_to for s in specs)
    rows = [
        [
            s.name,
            s.runtime + (f" / {s.model}" if s.model else ""),
            s.role or DASH,
            s.backend,
            s.restart.mode.value
            + (f" (max {s.restart.max_restarts})" if s.restart.mode.value != "never" else ""),
            "yes" if s.autostart else "no",
        ]
        + ([said(s.purpose, ROLE_SHOWN) if s.purpose else DASH, _talks_to(s)] if peers else [])
        for s in specs
    ]
    headers = ["name", "runtime", "class", "backend", "restart", "autostart"]
    return table(headers + (["role", "talks to"] if peers else []), rows)


def _talks_to(spec: AgentSpec) -> str:
    return ", ".join(said(name, 32) for name in spec.talks_to) or DASH


def roster_diff(diff: RosterDiff) -> str:
    parts = []
    for label, names in (
        ("added", diff.added),
        ("removed", diff.removed),
        ("changed", diff.changed),
        ("started", diff.started),
        ("repositories added", diff.repos_added),
    ):
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    if not parts:
        return "Roster reloaded: nothing changed."
    text = "Roster reloaded — " + "; ".join(parts) + "."
    if diff.changed_running:
        running = ", ".join(diff.changed_running)
        text += f" Still running with their old settings until restarted: {running}."
    if diff.removed_running:
        gone = ", ".join(diff.removed_running)
        text += f" Removed but still running, until stopped (never restarted): {gone}."
    return text


def usage(
    totals: Sequence[UsageTotal],
    *,
    window: str,
    since: datetime,
    agent: str | None = None,
    known: bool = True,
) -> str:
    """Token use per agent and model with a totals row, and notes on what the numbers leave
    out. ``known`` says whether ``agent`` is an agent Fleetwarden knows (for an empty
    report)."""
    words = _WINDOW_WORDS.get(window, f"in the last {window}")
    span = f"{words} (since {since:%Y-%m-%d %H:%M %Z})"
    if not totals:
        if agent is None:
            return f"No model requests recorded {span}."
        if known:
            return f"**{agent}** made no model requests {span}."
        return (
            f"No agent is called {code_span(agent)} and no usage is recorded for that name "
            f"{words}. `ps` lists the agents."
        )
    rows = [
        [
            t.agent,
            f"{said(t.model)} ({t.provider})" if t.provider else said(t.model),
            *_numbers(t.requests, t.tokens),
            money(t.cost_usd),
        ]
        for t in totals
    ]
    priced = [t.cost_usd for t in totals if t.cost_usd is not None]
    all_tokens = _sum_tokens(t.tokens for t in totals)
    requests = sum(t.requests for t in totals)
    rows.append(
        [
            "**total**",
            "",
            *_numbers(requests, all_tokens),
            money(sum(priced) if priced else None),
        ]
    )
    headers = [
        "agent",
        "model",
        "requests",
        "input",
        "output",
        "cache read",
        "cache write",
        "total",
        "cost",
    ]
    head = f"Token use {span}" + (f" by **{agent}**" if agent is not None else "") + ":"
    parts = [head, table(headers, rows)]
    notes = _outcome_notes(totals)
    if notes:
        parts.append(notes)
    unpriced = sorted({said(t.model) for t in totals if t.unpriced})  # names a provider gave
    if unpriced:
        parts.append(f"Tokens only: no price configured for {', '.join(unpriced)}.")
    return "\n\n".join(parts)


def _numbers(requests: int, tokens: Tokens) -> list[str]:
    return [
        f"{n:,}"
        for n in (
            requests,
            tokens.input,
            tokens.output,
            tokens.cache_read,
            tokens.cache_write,
            tokens.total,
        )
    ]


def _sum_tokens(each: Iterable[Tokens]) -> Tokens:
    summed = Tokens()
    for t in each:
        summed = Tokens(
            input=summed.input + t.input,
            output=summed.output + t.output,
            cache_read=summed.cache_read + t.cache_read,
            cache_write=summed.cache_write + t.cache_write,
            reasoning=summed.reasoning + t.reasoning,
        )
    return summed


def _outcome_notes(totals: Sequence[UsageTotal]) -> str:
    """One line on the requests whose tokens are missing or incomplete, if any."""
    counts = [
        (sum(t.partial for t in totals), "cut short (tokens as far as they went)"),
        (sum(t.unmetered for t in totals), "unmetered (no usage in the answer)"),
        (sum(t.refused for t in totals), "refused by the proxy"),
        (sum(t.errors for t in totals), "failed (provider error or unreachable)"),
    ]
    said = [f"{n} {what}" for n, what in counts if n]
    return "Of these requests: " + "; ".join(said) + "." if said else ""


def code_span(text: str) -> str:
    """``text`` in a code span for a message (backticks dropped so it cannot break out)."""
    return "`" + text.replace("`", "") + "`"
