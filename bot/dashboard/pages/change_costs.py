"""The dashboard's Changes page, ``/changes.csv`` and the changes in ``/metrics``: what a
merged change cost per agent, runtime and model served (:mod:`fleet.budgets.changes`), as
``report changes`` says it in chat, read from the ledger's changes store.

The page and its CSV show the last :data:`PAGE_DAYS` days; ``/metrics`` counts every change
that came to an end, all time, so Prometheus takes rates and increases over any window. A
model's name is the agent's or its provider's text: guarded as the other pages guard it
(:class:`bot.dashboard.pages.shapes.Redacted`), escaped by the template, made formula-safe in the
CSV and bounded as a label (:mod:`bot.dashboard.pages.metrics`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.dashboard.pages.shapes import Json, iso
from fleet.budgets.changes.outcome import Outcome
from fleet.budgets.changes.report import ChangeRow, OutcomeSum, by_outcome, changes_in, report
from fleet.ledger.stores.code.changes import ChangesStore
from fleet.timing.clock import Clock

PAGE_DAYS = 30
"""How far back the page and the CSV look, as ``report changes`` does unless told."""
ENDED = (Outcome.MERGED, Outcome.CLOSED, Outcome.ABANDONED)
"""The outcomes ``/metrics`` counts: a change is counted once it came to one, for good."""
CSV_FIELDS = (
    "agent",
    "runtime",
    "model",
    "merged",
    "closed",
    "abandoned",
    "open",
    "merge_rate",
    "median_merged_cost_usd",
    "all_in_per_merged_usd",
    "merged_cost_usd",
    "cost_usd",
    "merged_tokens",
    "median_merged_tokens",
    "tokens",
    "median_time_to_merge_seconds",
    "approvals",
    "unpriced_requests",
)
"""The columns of ``/changes.csv``: the names of the page's JSON."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENDED_FRESH = timedelta(seconds=60)
"""How long ``/metrics`` reuses its reading of the changes that came to an end."""


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def row_json(row: ChangeRow, line: Callable[[str], str]) -> Json:
    """One row of the report; ``line`` guards its model's name."""
    return {
        "agent": row.agent,
        "runtime": row.runtime,
        "model": line(row.model),
        "merged": row.merged,
        "closed": row.closed,
        "abandoned": row.abandoned,
        "open": row.open,
        "merge_rate": _round(row.merge_rate),
        "median_merged_cost_usd": _round(row.median_merged_cost_usd),
        "all_in_per_merged_usd": _round(row.all_in_per_merged_usd),
        "merged_cost_usd": round(row.merged_cost_usd, 6),
        "cost_usd": round(row.cost_usd, 6),
        "merged_tokens": row.merged_tokens,
        "median_merged_tokens": row.median_merged_tokens,
        "tokens": row.tokens,
        "median_time_to_merge_seconds": row.median_time_to_merge,
        "approvals": row.approvals,
        "unpriced_requests": row.unpriced,
    }


class ChangeCosts:
    """The Changes page's data and the sums ``/metrics`` reads."""

    def __init__(self, changes: ChangesStore, clock: Clock, line: Callable[[str], str]) -> None:
        """``line``: what guards a model's name on every page."""
        self._changes = changes
        self._clock = clock
        self._line = line
        self._ended: tuple[datetime, list[OutcomeSum]] | None = None  # when read, what

    async def page(self, days: int = PAGE_DAYS) -> Json:
        since = self._clock.now() - timedelta(days=days)
        found = report(await self._changes.changes(since), since)
        return {
            "since": iso(since),
            "days": days,
            "rows": [row_json(row, self._line) for row in found.rows],
            "total": row_json(found.total, self._line),
        }

    async def ended(self) -> list[OutcomeSum]:
        """Every change that came to an end, all time, summed per agent, runtime, model
        (guarded) and outcome — read at most once per :data:`ENDED_FRESH` (a scrape every
        few seconds does not read the whole ledger each time; a change's end shows at the
        next reading)."""
        now = self._clock.now()
        if self._ended is not None and now - self._ended[0] < ENDED_FRESH:
            return self._ended[1]
        changes = changes_in(await self._changes.changes(_EPOCH), _EPOCH)
        sums = by_outcome(c for c in changes if c.outcome in ENDED)
        found = [
            OutcomeSum(s.agent, s.runtime, self._line(s.model), s.outcome, s.changes,
                       s.cost_usd, s.tokens)
            for s in sums
        ]  # fmt: skip
        self._ended = (now, found)
        return found
