"""What ``fleetwarden status`` prints for people: the fleet (its connectors' links, its
agents, then its forge runs) and one agent in detail, from the dashboard API's answers;
and how any of it is made safe for a terminal.

Every text the server sent is taken as hostile — an agent's or a forge's words (a model's
name, an issue's title, a branch) may hold an escape sequence, a bidi override, markup or
a second line — and guarded (:mod:`fleet.redaction.guard`: one line, bounded, a hidden
character or a terminal's escape shown as its code point) and escaped before it is laid
out; :func:`shown` then takes out of the whole text anything that would drive the
terminal. ``--json`` output goes through :func:`json_text`, the same JSON made as safe.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.render import fleet as render
from bot.render.fleet import money
from bot.text.agent_text import escape
from connectors.markdown import to_plain
from fleet.metering.units import tokens, tokens_words
from fleet.redaction.guard import SHORT, guarded
from fleet.redaction.invisible import visible

PROBLEM_CHARS = 500  # characters of an agent's problems, on their one line
_NONE = "—"
STRICT = "enforce: strict (no agent unmetered, unsandboxed or open to any host)"


def fleet_text(data: Mapping[str, Any]) -> str:
    """The fleet as a table, problems first, as the console shows tables; then the live
    forge runs (the issue, its agent, the run's state, its pull request and title)."""
    totals = data.get("totals", {})
    spent = tokens_words(totals.get("tokens_today", 0)), money(totals.get("cost_today_usd", 0))
    head = (
        f"{totals.get('agents', 0)} agents, {totals.get('with_problems', 0)} with problems; "
        f"{spent[0]} and {spent[1]} today"
    )
    if data.get("enforce") == "strict":
        head += f"; {STRICT}"
    rows = [
        [
            _cell(a["name"]),
            _cell(a["host"]),
            _cell(a["state"]),
            _NONE if (beat := a.get("heartbeat_age_seconds")) is None else f"{beat:.0f}s",
            _cell(a.get("model") or _NONE),
            tokens(a.get("tokens_today", 0)),
            render.money(a.get("cost_today_usd", 0)),
            _cell("; ".join(a.get("problems", [])) or _NONE, PROBLEM_CHARS),
        ]
        for a in data.get("agents", [])
    ]
    heads = ("agent", "host", "state", "beat", "model", "tokens", "cost", "problems")
    parts = [escape(shown(head)), render.table(heads, rows)]
    if links := _links(data):
        parts.insert(1, escape(links))
    if build := _build(data.get("build")):
        parts.append(escape(shown(build)))
    runs = data.get("forge_runs") or []
    if runs:
        parts += [f"{len(runs)} forge {'run' if len(runs) == 1 else 'runs'}:", _forge_table(runs)]
    return to_plain("\n\n".join(parts))


def standing_text(data: Mapping[str, Any]) -> str:
    """What the fleet's answer says of the app beyond its agents, as :func:`fleet_text`
    says it: ``enforce: strict`` when on, each connector's link, the build (``ps``'s data
    without a dashboard); empty when it says none of them."""
    said = [STRICT] if data.get("enforce") == "strict" else []
    said += [part for part in (_links(data), _build(data.get("build"))) if part]
    return shown("\n\n".join(said))


def _links(data: Mapping[str, Any]) -> str:
    return "\n".join(_link(link) for link in data.get("connectors") or [])


def _build(build: object) -> str:
    """``Fleetwarden 0.2.0 (commit 1a2b3c4)``, as the API says it; empty when it says none."""
    if not isinstance(build, Mapping) or not build.get("version"):
        return ""
    commit = build.get("commit")
    words = _line(build["version"]) + (f" (commit {_line(commit)})" if commit else "")
    return f"Fleetwarden {words}"


def _forge_table(runs: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            _cell(f"{run.get('slug') or run.get('repo')}#{run.get('issue')}"),
            _cell(run.get("agent")),
            _cell(run.get("state")),
            _NONE if run.get("pull") is None else _cell(f"#{run['pull']}"),
            _cell(run.get("title") or _NONE),
        ]
        for run in runs
    ]
    return render.table(("issue", "agent", "state", "pull", "title"), rows)


def agent_text(data: Mapping[str, Any], forge_runs: Sequence[Mapping[str, Any]] = ()) -> str:
    """One agent in detail (``/api/agents/NAME``): its state, runtime, model, heartbeat and
    today's use, its problems, its branch, its forge runs (from ``/api/fleet``, when
    given), and its last runs."""
    a = data.get("agent", {})
    facts: list[tuple[str, str]] = [
        ("state", _state(a)),
        ("runtime", f"{_line(a.get('runtime'))} ({_line(a.get('backend'))} backend)"),
        ("model", _model(a)),
        ("started", _when(a.get("started_at"))),
        ("heartbeat", _beat(a.get("heartbeat_age_seconds"))),
        (
            "today",
            f"{tokens_words(a.get('tokens_today', 0))}, {money(a.get('cost_today_usd', 0.0))}",
        ),
    ]
    if a.get("queued_until"):
        facts.append(("queued", f"until {_line(a['queued_until'])}"))
    facts += [("problem", _line(p, PROBLEM_CHARS)) for p in a.get("problems", [])]
    change = data.get("change")
    if change:
        facts.append(("branch", _change(change)))
    facts += [("forge run", _forge_run(run)) for run in forge_runs]
    width = max(len(label) for label, _ in facts)
    lines = [f"{_line(a.get('name'))} on {_line(a.get('host'))}"]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in facts]
    text = "\n".join(lines)
    runs = data.get("runs") or []
    if not runs:
        return text + "\n\nNo runs yet."
    rows = [
        [
            _cell(run.get("run_id")),
            _cell(run.get("runtime")),
            str(run.get("requests", 0)),
            render.compact(run.get("tokens")),
            render.money(run.get("cost_usd")),
        ]
        for run in runs
    ]
    heads = ("run", "runtime", "requests", "tokens", "cost")
    return f"{text}\n\nLast runs:\n\n" + to_plain(render.table(heads, rows))


def _state(a: Mapping[str, Any]) -> str:
    extra = [f"pid {_line(a['pid'])}"] if a.get("pid") else []
    reason = _line(a.get("reason"), PROBLEM_CHARS)
    if reason and reason not in extra:
        extra.append(reason)
    return _line(a.get("state")) + (f" ({'; '.join(extra)})" if extra else "")


def _model(a: Mapping[str, Any]) -> str:
    model = _line(a.get("model")) or _NONE
    if a.get("downgraded_from"):
        model += f" (downgraded from {_line(a['downgraded_from'])})"
    pacing = a.get("pacing")
    if isinstance(pacing, Mapping):
        model += f"; budget {_line(pacing.get('budget'))} at {_line(pacing.get('step'))}"
    return model


def _when(value: object) -> str:
    """An API time, to the second in UTC (as the server sent it, if it is not one)."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return _line(value) or _NONE
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _link(link: Mapping[str, Any]) -> str:
    """One connector's link: up or down since when, its last event and, down, its last
    error (the server's words, guarded)."""
    state = "up" if link.get("up") else "logged out" if link.get("connected") else "DOWN"
    text = f"{_line(link.get('name'))} {state} since {_when(link.get('since'))}"
    if link.get("last_event_at"):
        text += f", last event {_when(link['last_event_at'])}"
    if not link.get("up") and link.get("last_error"):
        text += f"; last error: {_line(link['last_error'])}"
    return text


def _beat(age: object) -> str:
    if not isinstance(age, int | float):
        return "none yet"
    return f"{render.duration(age)} ago"


def _change(change: Mapping[str, Any]) -> str:
    if change.get("error"):
        return f"cannot be read: {_line(change['error'], PROBLEM_CHARS)}"
    commits = len(change.get("commits") or []) + int(change.get("more_commits") or 0)
    files = len(change.get("files") or []) + int(change.get("more_files") or 0)
    said = [
        f"{_line(change.get('branch'))} on {_line(change.get('repo'))} "
        f"(base {_line(change.get('base_ref'))})",
        f"{commits} {'commit' if commits == 1 else 'commits'}",
        f"{files} {'file' if files == 1 else 'files'} "
        f"+{change.get('added') or 0} −{change.get('removed') or 0}",
    ]
    said += [word for word in ("pushed", "merged") if change.get(word)]
    return ", ".join(said)


def _forge_run(run: Mapping[str, Any]) -> str:
    issue = f"{_line(run.get('slug') or run.get('repo'))}#{_line(run.get('issue'))}"
    pull = f", pull request #{_line(run['pull'])}" if run.get("pull") is not None else ""
    title = f": {_line(run['title'])}" if run.get("title") else ""
    return f"{issue} {_line(run.get('state'))}{pull}{title}"


def _line(value: object, limit: int = SHORT) -> str:
    """A value the server sent, as one plain line (nothing in it hidden or driving)."""
    return "" if value is None else guarded(str(value), visible, limit)


def _cell(value: object, limit: int = SHORT) -> str:
    """A value the server sent, for a markdown table cell."""
    return escape(_line(value, limit))


def shown(text: str) -> str:
    """``text`` safe for a terminal: every control character but line feed and tab, and
    every invisible format character (a bidi override, a zero-width space), as
    ``[U+XXXX]`` — nothing the server sent moves the cursor, sets a colour or reorders a
    line."""
    if text.isascii() and _CONTROL.search(text) is None:
        return text
    return "".join(f"[U+{ord(c):04X}]" if _hidden(c) else c for c in text)


def json_text(data: object) -> str:
    """``data`` as indented JSON, every character :func:`shown` would show as a code point
    written as its JSON escape instead (``\\u202e``): the same JSON, safe for a
    terminal."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if text.isascii() and "\x7f" not in text:  # json.dumps escapes the other ASCII controls
        return text
    return "".join(_json_escape(c) if _hidden(c) else c for c in text)


def _hidden(char: str) -> bool:
    return char not in "\n\t" and unicodedata.category(char) in ("Cc", "Cf")


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a surrogate pair, as JSON writes a character past the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
