"""What each budget has used in its current window, read from the ledger: the window's
bounds, the spend of what its scope covers, the burn rate of the last hour, the series its
chart draws, and the provider's own reading when fresh — each budget's
:class:`~fleet.budgets.model.BudgetStatus` before the policy annotates it.

**Where the numbers come from.** A budget counts the metered usage of every agent its
scope covers since its window began (source ``metering``). A budget with an ``account``
(a subscription shared by agents) prefers the provider's own word: the latest quota
headers the proxy recorded for that window (``anthropic-ratelimit-unified-5h-*`` and
``-7d-*``, Codex's ``x-codex-primary/secondary-*``), if fresher than
:data:`~fleet.budgets.pacing.readings.SIGNAL_FRESHNESS` — utilization × limit as ``used`` and the
provider's reset as the window's end (source ``provider``, read by
:mod:`fleet.budgets.pacing.readings`). Without fresh signals it falls back to our metering, shown
as ``estimated``, never to silence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from fleet.budgets.model import BudgetStatus, Groups, Source
from fleet.budgets.pacing.law import Spent, assess
from fleet.budgets.pacing.readings import provider_reading
from fleet.budgets.pacing.windows import window_bounds
from fleet.budgets.stores import BudgetStores
from fleet.ledger.records.budgets import Budget, WindowKind

BURN_SPAN: Final = timedelta(hours=1)  # the burn rate is measured over the last hour
CHART_POINTS: Final = 200  # buckets per window in a status's series
_Spend = tuple[int, float | None]


class Measures:
    """Budgets measured against the ledger's usage: ``groups`` tells what a scope covers,
    ``tz`` where calendar windows begin."""

    def __init__(self, stores: BudgetStores, groups: Groups, tz: ZoneInfo) -> None:
        self._stores = stores
        self._groups = groups
        self._tz = tz
        self._since: dict[str, datetime] = {}  # when fixed windows without a length began

    def forget(self, key: str) -> None:
        """Budget ``key`` was set or unset: a fixed window of its begins when next seen."""
        self._since.pop(key, None)

    async def statuses(self, budgets: Iterable[Budget], now: datetime) -> list[BudgetStatus]:
        """Each of ``budgets`` as it stands at ``now``."""
        spend: dict[tuple[datetime, datetime, str], dict[str, tuple[int, float | None]]] = {}

        async def spent(since: datetime, until: datetime, by: str) -> dict[str, _Spend]:
            if (since, until, by) not in spend:
                spend[since, until, by] = await self._stores.metering.spend_by_agent(
                    since, until, by=by
                )
            return spend[since, until, by]

        signals = await self._stores.metering.latest_quota_signals()
        windows = await self._stores.accounts.quota_windows()
        statuses: list[BudgetStatus] = []
        for budget in budgets:
            start, end = self.bounds(budget, now)
            source = Source.METERING
            reading = provider_reading(budget, signals, windows, now)
            if (budget.account or budget.scope.kind == "account") and reading is None:
                source = Source.ESTIMATED
            provider_reset = False  # whether the window's end is the provider's reset
            if reading is not None and reading[1] is not None and budget.window.length:
                end, provider_reset = reading[1], True
                start = end - budget.window.length
            by = budget.scope.kind if budget.scope.by_usage_column else "agent"
            rows = await spent(start, min(end, now), by)
            if by == "agent":
                covered = [a for a in rows if self._groups.covers(budget.scope, a)]
            else:
                covered = [budget.scope.name or ""]
            unit = "tokens" if budget.limit_tokens is not None else "usd"
            limit = float(budget.limit_tokens or budget.limit_usd or 0.0)
            pick = 0 if unit == "tokens" else 1
            used = float(sum((rows[a][pick] or 0.0) if a in rows else 0.0 for a in covered))
            series = await self._series(budget, start, end, covered, pick)
            recent_from = max(start, now - BURN_SPAN)
            recent = await spent(recent_from, min(end, now), by)
            burned = float(sum(recent[a][pick] or 0.0 for a in recent if a in covered))
            dollars = None  # a budget with both limits: its dollars bind too
            if unit == "tokens" and budget.limit_usd is not None:
                dollars = float(sum((rows[a][1] or 0.0) if a in rows else 0.0 for a in covered))
            if reading is not None:
                used, source = reading[0] * limit, Source.PROVIDER
            hours = max((now - recent_from).total_seconds(), 1.0) / 3600
            statuses.append(
                assess(
                    budget,
                    start=start,
                    end=end,
                    now=now,
                    spent=Spent(used=used, limit=limit, unit=unit, burn_rate=burned / hours),
                    source=source,
                    series=series,
                    usd_used=dollars,
                    provider_reset=provider_reset,
                )
            )
        return statuses

    def bounds(self, budget: Budget, now: datetime) -> tuple[datetime, datetime]:
        """The current window of ``budget``. A rolling window with a ``reset_at`` repeats
        from it (it ends there, then every length after); a fixed window without a length
        runs from when this Fleetwarden first saw the budget to its ``reset_at``."""
        window = budget.window
        if window.kind is WindowKind.FIXED and window.length is None and window.reset_at:
            # First seen at or after its reset (a restart once it passed), the window is over
            # and its start unknown: a minute before the end keeps it a window (start < end).
            first = min(now, window.reset_at - timedelta(minutes=1))
            since = self._since.setdefault(budget.key, first)
            return since, window.reset_at
        return window_bounds(window, now, self._tz, anchor=window.reset_at)

    async def _series(
        self, budget: Budget, start: datetime, end: datetime, agents: list[str], pick: int
    ) -> tuple[tuple[datetime, float], ...]:
        """Cumulative use over the window so far, in up to :data:`CHART_POINTS` buckets."""
        bucket = max(60, math.ceil((end - start).total_seconds() / CHART_POINTS))
        scope = budget.scope
        if scope.by_usage_column:
            served_by = (scope.kind, scope.name or "")
            rows = await self._stores.metering.usage_series(
                start, agents=None, bucket_seconds=bucket, served_by=served_by
            )
        else:
            only = None if scope.kind == "global" else agents
            rows = await self._stores.metering.usage_series(
                start, agents=only, bucket_seconds=bucket
            )
        total = 0.0
        points: list[tuple[datetime, float]] = [(start, 0.0)]
        for at, tokens, cost in rows:
            total += tokens if pick == 0 else cost
            points.append((at + timedelta(seconds=bucket), total))
        return tuple(points)
