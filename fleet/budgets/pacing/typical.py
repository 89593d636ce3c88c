"""What a typical day costs: per agent and per budget, the median of the daily spend over
the last :data:`TYPICAL_DAYS` whole UTC days, counted from the first of them with usage (the
days without any after it count as zero; the days before it do not, so an agent new this
week is not made cheap by the days it did not exist). Today, not over yet, is left out.

A budget's days sum what its scope counts, as its pacing does
(:class:`~fleet.budgets.service.BudgetService`): the usage of the agents it covers, or —
for an ``account``, ``provider`` or ``host`` budget — the usage that one served; in the
budget's unit (tokens, or dollars for a dollar-only budget). :func:`typical_days` is pure;
:func:`typical_spend` reads the days from the metering store."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from fleet.ledger.records.budgets import Budget, Scope
from fleet.ledger.stores.spend.metering import MeteringStore

TYPICAL_DAYS: Final = 14
"""How many whole UTC days, before today, a typical day is the median of."""

Daily = Mapping[date, tuple[int, float | None]]
"""Tokens and priced dollars (``None``: none priced) by UTC day."""


@dataclass(frozen=True, slots=True)
class Typical:
    """A typical day of ``who`` (an agent, or a budget's scope): the median daily
    ``tokens`` and ``usd`` (``None``: no request of it was priced) over ``days`` days."""

    who: str
    tokens: float
    usd: float | None
    days: int
    unit: str = "tokens"
    """What it is counted in, for a budget: ``tokens`` or ``usd``."""

    @property
    def amount(self) -> float:
        """The median in its unit."""
        return (self.usd or 0.0) if self.unit == "usd" else self.tokens


@dataclass(frozen=True, slots=True)
class TypicalSpend:
    """The agents' typical days, the costliest first, and the budgets'; ``days``: the whole
    UTC days they were reckoned over, oldest first."""

    agents: tuple[Typical, ...]
    budgets: tuple[Typical, ...]
    days: tuple[date, ...]


def last_days(now: datetime, count: int = TYPICAL_DAYS) -> tuple[date, ...]:
    """The ``count`` whole UTC days before ``now``'s, oldest first."""
    today = now.astimezone(UTC).date()
    return tuple(today - timedelta(days=n) for n in range(count, 0, -1))


def typical_days(
    who: str, daily: Daily, days: Sequence[date], unit: str = "tokens"
) -> Typical | None:
    """``who``'s typical day over ``days`` (oldest first) from its ``daily`` spend: the
    medians from the first day with usage on, zero days included; ``None`` when it had
    none on any of them."""
    used = [day for day in days if day in daily]
    if not used:
        return None
    counted = [day for day in days if day >= used[0]]
    tokens = [daily[day][0] if day in daily else 0 for day in counted]
    priced = any(daily[day][1] is not None for day in used)
    dollars = [(daily[day][1] or 0.0) if day in daily else 0.0 for day in counted]
    return Typical(
        who,
        float(statistics.median(tokens)),
        float(statistics.median(dollars)) if priced else None,
        len(counted),
        unit,
    )


def summed(parts: Iterable[Daily]) -> dict[date, tuple[int, float | None]]:
    """Several daily spends added up day by day."""
    total: dict[date, tuple[int, float | None]] = {}
    for daily in parts:
        for day, (tokens, usd) in daily.items():
            before_tokens, before_usd = total.get(day, (0, None))
            dollars = before_usd if usd is None else (before_usd or 0.0) + usd
            total[day] = (before_tokens + tokens, dollars)
    return total


async def typical_spend(
    metering: MeteringStore,
    budgets: Sequence[Budget],
    covers: Callable[[Scope, str], bool],
    now: datetime,
) -> TypicalSpend:
    """Every agent's and every budget's typical day as of ``now`` (the module says how);
    ``covers``: whether a scope covers an agent (the budgets' groups)."""
    days = last_days(now)
    since = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC)
    until = since + timedelta(days=len(days))
    by_agent = await metering.daily_spend(since, until)
    agents = [typical_days(agent, daily, days) for agent, daily in by_agent.items()]
    served: dict[str, Mapping[str, Daily]] = {}
    found: list[Typical | None] = []
    for budget in budgets:
        scope, unit = budget.scope, "tokens" if budget.limit_tokens is not None else "usd"
        if scope.by_usage_column:
            if scope.kind not in served:
                served[scope.kind] = await metering.daily_spend(since, until, by=scope.kind)
            daily: Daily = served[scope.kind].get(scope.name or "", {})
        else:
            daily = summed(d for agent, d in by_agent.items() if covers(scope, agent))
        found.append(typical_days(str(scope), daily, days, unit))
    return TypicalSpend(
        agents=tuple(sorted((t for t in agents if t), key=_costliest)),
        budgets=tuple(t for t in found if t),
        days=days,
    )


def _costliest(typical: Typical) -> tuple[float, float, str]:
    return (-(typical.usd or 0.0), -typical.tokens, typical.who)
