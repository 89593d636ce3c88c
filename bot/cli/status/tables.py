"""What ``fleetwarden status tasks`` and ``status changes`` print for people: the register's
tasks and missions as tables (from ``/api/tasks``), and what a merged change cost per
agent, runtime and model (from ``/api/changes``) laid out as ``report changes`` lays it out
in chat (:func:`bot.render.spend.change_costs.changes_report`), the same table and words.

Every text the server sent is guarded and escaped before it is laid out, and every number
it sent is taken only when it is one (anything else reads as none), as in
:mod:`bot.cli.status.text`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.render import fleet as render
from bot.render.spend.change_costs import changes_report
from bot.text.agent_text import escape
from connectors.markdown import to_plain
from fleet.budgets.changes.report import ALL, ChangeRow, ChangesReport
from fleet.redaction.guard import SHORT, guarded
from fleet.redaction.invisible import visible

WHY_CHARS = 120  # characters of a task's reason, in its cell
_NONE = "—"
_ENDED = ("done", "failed", "cancelled")


def tasks_text(data: Mapping[str, Any]) -> str:
    """The register as ``/api/tasks`` sends it: how many in each state, then a table of the
    tasks (open first, as the board orders them) — each with its projected median beside
    what it cost so far — and one of the missions with their progress and sums."""
    counts = _mapping(data.get("counts"))
    said = [f"{_int(n)} {_line(state)}" for state, n in counts.items() if _int(n)]
    total = sum(_int(n) for n in counts.values())
    opened = sum(_int(n) for state, n in counts.items() if state not in _ENDED)
    head = f"{total} tasks, {opened} open" + (f" ({', '.join(said)})" if said else "")
    tasks = [t for t in _list(data.get("tasks")) if isinstance(t, Mapping)]
    if not tasks:
        return to_plain(escape(head) + "\n\nNo tasks yet: `task new TITLE` makes one in chat.")
    rows = [
        [
            _cell(f"#{_int(t.get('id'))} {_line(t.get('name'))}"),
            _cell(t.get("state")),
            _cell(t.get("agent") or _NONE),
            _cell(t.get("mission") or _NONE),
            _projected(t.get("projection")),
            _actual(t.get("actual")),
            _cell(t.get("why") or _NONE, WHY_CHARS),
        ]
        for t in tasks
    ]
    heads = ("task", "state", "agent", "mission", "projected", "actual", "why")
    parts = [escape(head), render.table(heads, rows)]
    ended = data.get("ended_shown")
    if isinstance(ended, int) and any(t.get("state") in _ENDED for t in tasks):
        parts.append(f"Of the ended, the latest {ended} of each end are shown.")
    missions = [m for m in _list(data.get("missions")) if isinstance(m, Mapping)]
    if missions:
        parts += ["Missions:", _missions_table(missions)]
    return to_plain("\n\n".join(parts))


def _missions_table(missions: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for m in missions:
        totals = _mapping(m.get("totals"))
        projected = _pair(totals.get("projected_usd"), dollars=True)
        if projected == _NONE:
            projected = _pair(totals.get("projected_tokens"), dollars=False)
        rows.append(
            [
                _cell(m.get("name")),
                _cell(m.get("parent") or _NONE),
                _cell(totals.get("progress") or _NONE),
                projected,
                _spent(totals.get("actual_tokens"), totals.get("actual_usd")),
            ]
        )
    return render.table(("mission", "in", "progress", "projected", "actual"), rows)


def _pair(value: object, *, dollars: bool) -> str:
    """``$0.40 (p90 $0.90)``, or in tokens; a dash when it is not a pair of numbers."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        return _NONE
    median, p90 = _num(value[0]), _num(value[1])
    if median is None or p90 is None:
        return _NONE
    if dollars:
        return f"{render.money(median)} (p90 {render.money(p90)})"
    return f"{render.compact(round(median))} tok (p90 {render.compact(round(p90))})"


def _projected(projection: object) -> str:
    if not isinstance(projection, Mapping):
        return _NONE
    found = _pair(projection.get("usd"), dollars=True)
    return found if found != _NONE else _pair(projection.get("tokens"), dollars=False)


def _actual(actual: object) -> str:
    if not isinstance(actual, Mapping):
        return _NONE
    return _spent(actual.get("tokens"), actual.get("usd"))


def _spent(tokens: object, usd: object) -> str:
    """``$0.12 (6.2k tok)``, or the tokens alone when nothing was priced."""
    dollars = _num(usd)
    counted = render.compact(_int(tokens)) + " tok"
    return counted if dollars is None else f"{render.money(dollars)} ({counted})"


def changes_text(data: Mapping[str, Any]) -> str:
    """``/api/changes`` as ``report changes`` says it: the table with its totals row and
    the words that say what each figure is."""
    rows = tuple(_row(r) for r in _list(data.get("rows")) if isinstance(r, Mapping))
    total = data.get("total")
    found = ChangesReport(
        since=_since(data.get("since")),
        rows=rows,
        total=_row(total) if isinstance(total, Mapping) else _row({}),
    )
    days = _int(data.get("days")) or 30
    return to_plain(changes_report(found, window=f"{days}d"))


def _row(r: Mapping[str, Any]) -> ChangeRow:
    """One row of ``/api/changes``, each number taken only when it is one."""
    return ChangeRow(
        agent=_line(r.get("agent") or ALL),
        runtime=_line(r.get("runtime") or ALL),
        model=_line(r.get("model") or ALL),
        merged=_int(r.get("merged")),
        closed=_int(r.get("closed")),
        abandoned=_int(r.get("abandoned")),
        open=_int(r.get("open")),
        tokens=_int(r.get("tokens")),
        cost_usd=_num(r.get("cost_usd")) or 0.0,
        merged_tokens=_int(r.get("merged_tokens")),
        merged_cost_usd=_num(r.get("merged_cost_usd")) or 0.0,
        median_merged_cost_usd=_num(r.get("median_merged_cost_usd")),
        median_merged_tokens=_num(r.get("median_merged_tokens")),
        median_time_to_merge=_num(r.get("median_time_to_merge_seconds")),
        approvals=_int(r.get("approvals")),
        unpriced=_int(r.get("unpriced_requests")),
    )


def _since(value: object) -> datetime:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(UTC)  # only shown in the heading: the server sent no time
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _num(value: object) -> float | None:
    """``value`` when it is a number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: object) -> int:
    """``value`` when it is a whole number (not a bool), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _line(value: object, limit: int = SHORT) -> str:
    """A value the server sent, as one plain line (nothing in it hidden or driving)."""
    return "" if value is None else guarded(str(value), visible, limit)


def _cell(value: object, limit: int = SHORT) -> str:
    """A value the server sent, for a markdown table cell."""
    return escape(_line(value, limit))


def _list(value: object) -> list[Any]:
    """``value`` when the server sent a list there, else none: a number or a string where a
    list belongs reads as nothing, never as a traceback."""
    return value if isinstance(value, list) else []
