"""What the pacing report says beside its table, from what was spent before: how far the
week's projections were off (:func:`projection_line`, from :mod:`fleet.tasks.accuracy`) and
what a typical day costs per agent and per budget (:func:`typical_text`, from
:mod:`fleet.budgets.pacing.typical`). Each line is left out when there is nothing to say;
the agents are the costliest :data:`TOP_AGENTS` and how many more, to fit a phone's screen.

:func:`projection_line` and :func:`typical_text` are pure; :class:`ReportHistory` reads what
they need for :func:`bot.render.spend.report.compose`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Final

from fleet.budgets.pacing.typical import Typical, TypicalSpend
from fleet.budgets.quoting.words import usd
from fleet.ledger.records.tasks import TaskRecord
from fleet.markdown.defuse import escape_cell
from fleet.metering import units
from fleet.tasks.accuracy import ERROR_SPAN, Accuracy, accuracy

TOP_AGENTS: Final = 5
"""Agents the typical day names; the rest are counted."""
_MONTHS: Final = (
    *("Jan", "Feb", "Mar", "Apr", "May", "Jun"),
    *("Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
)
_NAME_CAP: Final = 40


def times(error: float) -> str:
    """``×1.20``: an actual / projected ratio."""
    return f"×{error:.2f}"


def projection_line(found: Accuracy) -> str:
    """``Projections this week: 5 tasks ended, actual/projected median ×1.20, from ×0.50 to
    ×3.00 (worst: #7 fix-login).``"""
    ended = f"{found.ended} task{'' if found.ended == 1 else 's'} ended"
    spread = f", from {times(found.low)} to {times(found.high)}" if found.ended > 1 else ""
    worst = found.worst
    name = escape_cell(worst.name, _NAME_CAP)
    return (
        f"**Projections this week**: {ended}, actual/projected median {times(found.median)}"
        f"{spread} (worst: #{worst.id} {name}, {times(found.worst_error)})."
    )


def _agent(typical: Typical) -> str:
    tokens = units.tokens_words(typical.tokens)
    spent = tokens if typical.usd is None else f"{usd(typical.usd)} · {tokens}"
    return f"`{typical.who}` {spent} ({typical.days} d)"


def today_line(spent: Mapping[str, tuple[int, float | None]], top: int = TOP_AGENTS) -> str:
    """``**Spent today**: 42 tokens · $0.0002 — `demo` $0.0002 · 42 tokens.``: what the
    agents spent since midnight UTC, the costliest ``top`` named; empty when nothing was."""
    if not spent:
        return ""
    tokens = sum(amount for amount, _ in spent.values())
    costs = [cost for _, cost in spent.values() if cost is not None]
    total = units.tokens_words(tokens) + (f" · {usd(sum(costs))}" if costs else "")
    ranked = sorted(spent.items(), key=lambda item: (-(item[1][1] or 0.0), -item[1][0], item[0]))
    named = [
        f"`{escape_cell(who, _NAME_CAP)}` "
        + (
            units.tokens_words(amount)
            if cost is None
            else f"{usd(cost)} · {units.tokens_words(amount)}"
        )
        for who, (amount, cost) in ranked[:top]
    ]
    if len(ranked) > top:
        named.append(f"…{len(ranked) - top} more")
    return f"**Spent today** (since 00:00 UTC): {total} — {', '.join(named)}."


def _budget(typical: Typical) -> str:
    if typical.unit == "usd":
        return f"`{typical.who}` {usd(typical.amount)}"
    return f"`{typical.who}` {units.tokens_words(typical.amount)}"


def typical_text(spend: TypicalSpend, top: int = TOP_AGENTS) -> str:
    """The typical day: its agents, the costliest ``top`` of them named, and its budgets;
    empty when nothing was spent in its days."""
    if not (spend.agents or spend.budgets):
        return ""
    first, last = spend.days[0], spend.days[-1]
    span = f"{_MONTHS[first.month - 1]} {first.day}–{_MONTHS[last.month - 1]} {last.day}"
    lines = [
        f"**Typical day** — the median of the {len(spend.days)} whole UTC days {span}, "
        "from the first with usage (the days without any after it count as nothing):"
    ]
    if spend.agents:
        named = [_agent(typical) for typical in spend.agents[:top]]
        more = len(spend.agents) - top
        if more > 0:
            named.append(f"…{more} more")
        lines.append("- agents: " + ", ".join(named))
    if spend.budgets:
        lines.append("- budgets: " + ", ".join(_budget(typical) for typical in spend.budgets))
    return "\n".join(lines)


class ReportHistory:
    """What the report reads of the past: the tasks that ended with a projection's error
    since a time (the register's ``errors_since``) and the typical day (the budgets')."""

    def __init__(
        self,
        errors_since: Callable[[datetime], Awaitable[list[TaskRecord]]],
        typical: Callable[[], Awaitable[TypicalSpend]],
        spent_since: Callable[[datetime], Awaitable[Mapping[str, tuple[int, float | None]]]]
        | None = None,
    ) -> None:
        self._errors_since = errors_since
        self._typical = typical
        self._spent_since = spent_since

    async def today(self, now: datetime) -> str:
        """What was spent today as of ``now`` (:func:`today_line`): the report's words when no
        budget is there to pace; empty when nothing was, or nothing reads it."""
        if self._spent_since is None:
            return ""
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return today_line(await self._spent_since(midnight))

    async def text(self, now: datetime) -> str:
        """The report's lines of the past as of ``now``: the week's projections, the
        typical day; empty when there is neither."""
        found = accuracy(await self._errors_since(now - ERROR_SPAN))
        parts = [projection_line(found)] if found is not None else []
        typical = typical_text(await self._typical())
        if typical:
            parts.append(typical)
        return "\n\n".join(parts)
