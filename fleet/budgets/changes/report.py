"""The cost-per-merged-change report: the changes of a window (:mod:`.outcome`) counted per
agent × runtime × model served — merged, closed unmerged, abandoned, open — with what they
cost.

Two costs per merged change, named apart:

- **median per merged** (and the total of the merged ones): what the merged changes
  themselves cost, the median of them;
- **all-in per merged**: everything the row's changes cost, merged or not, over the merged
  ones — the unmerged were paid for too.

Dollars are the priced usage (:attr:`ChangeRow.unpriced` counts the usage rows with tokens
and no price, which they leave out); tokens sit beside them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from fleet.budgets.changes.outcome import Change, Outcome, change_of, in_window
from fleet.ledger.records.changes import ChangeFacts

ALL = "all"
"""The agent, runtime and model of the totals row."""


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """The changes of one agent on one runtime and model served (or of all: the totals)."""

    agent: str
    runtime: str
    model: str
    merged: int
    closed: int
    abandoned: int
    open: int
    tokens: int  # of all the row's changes
    cost_usd: float  # of all the row's changes, merged or not
    merged_tokens: int
    merged_cost_usd: float
    median_merged_cost_usd: float | None
    median_merged_tokens: float | None
    median_time_to_merge: float | None  # seconds from the branch's cut to the merge
    approvals: int
    unpriced: int

    @property
    def changes(self) -> int:
        return self.merged + self.closed + self.abandoned + self.open

    @property
    def all_in_per_merged_usd(self) -> float | None:
        """All the row's cost over its merged changes (``None`` when none merged)."""
        return self.cost_usd / self.merged if self.merged else None

    @property
    def merge_rate(self) -> float | None:
        """Merged of the changes that came to an end (``None`` while none has)."""
        decided = self.merged + self.closed + self.abandoned
        return self.merged / decided if decided else None


@dataclass(frozen=True, slots=True)
class ChangesReport:
    """The report since a time: its rows, busiest first, and the totals over them."""

    since: datetime
    rows: tuple[ChangeRow, ...]
    total: ChangeRow


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def row_of(agent: str, runtime: str, model: str, changes: Sequence[Change]) -> ChangeRow:
    """The counts and sums of ``changes`` as one row."""
    counts = {outcome: 0 for outcome in Outcome}
    for change in changes:
        counts[change.outcome] += 1
    merged = [c for c in changes if c.outcome is Outcome.MERGED]
    waits = [c.time_to_merge for c in merged if c.time_to_merge is not None]
    return ChangeRow(
        agent=agent,
        runtime=runtime,
        model=model,
        merged=counts[Outcome.MERGED],
        closed=counts[Outcome.CLOSED],
        abandoned=counts[Outcome.ABANDONED],
        open=counts[Outcome.OPEN],
        tokens=sum(c.tokens for c in changes),
        cost_usd=sum(c.cost_usd for c in changes),
        merged_tokens=sum(c.tokens for c in merged),
        merged_cost_usd=sum(c.cost_usd for c in merged),
        median_merged_cost_usd=_median([c.cost_usd for c in merged]),
        median_merged_tokens=_median([float(c.tokens) for c in merged]),
        median_time_to_merge=_median(waits),
        approvals=sum(c.facts.approvals for c in changes),
        unpriced=sum(c.unpriced for c in changes),
    )


def changes_in(facts: Iterable[ChangeFacts], since: datetime) -> list[Change]:
    """The changes of ``facts`` that belong to a report since ``since``."""
    return [c for c in map(change_of, facts) if in_window(c, since)]


def report(facts: Iterable[ChangeFacts], since: datetime) -> ChangesReport:
    """The report of ``facts`` since ``since``: a row per agent, runtime and model served,
    the most changes first (then by name), and the totals."""
    changes = changes_in(facts, since)
    groups: dict[tuple[str, str, str], list[Change]] = {}
    for change in changes:
        groups.setdefault((change.facts.agent, change.runtime, change.model), []).append(change)
    rows = [row_of(*key, group) for key, group in groups.items()]
    rows.sort(key=lambda r: (-r.changes, r.agent, r.runtime, r.model))
    return ChangesReport(since, tuple(rows), row_of(ALL, ALL, ALL, changes))


@dataclass(frozen=True, slots=True)
class OutcomeSum:
    """The changes of one agent, runtime and model that came to one outcome, summed."""

    agent: str
    runtime: str
    model: str
    outcome: Outcome
    changes: int
    cost_usd: float
    tokens: int


def by_outcome(changes: Iterable[Change]) -> list[OutcomeSum]:
    """``changes`` counted and summed per agent, runtime, model served and outcome, in
    that order."""
    sums: dict[tuple[str, str, str, Outcome], tuple[int, float, int]] = {}
    for c in changes:
        key = (c.facts.agent, c.runtime, c.model, c.outcome)
        n, usd, tokens = sums.get(key, (0, 0.0, 0))
        sums[key] = (n + 1, usd + c.cost_usd, tokens + c.tokens)
    return [OutcomeSum(*key, *value) for key, value in sorted(sums.items())]
