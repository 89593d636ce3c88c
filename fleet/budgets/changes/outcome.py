"""What a change came to — merged, closed unmerged, abandoned or still open — and when, and
the runtime and model it counts under, from the ledger's facts of it
(:class:`fleet.ledger.records.changes.ChangeFacts`).

- **merged**: its pull request was merged on the forge (its forge run's ``end`` audit says
  ``merged``), or ``merge`` landed its branch here (the line is ``merged``); at that time.
- **closed unmerged**: its pull request was closed without a merge (``end`` says
  ``closed``). Only a forge run's pull request can be: a chat branch is merged or
  discarded here.
- **abandoned**: its branch was discarded here (``discard``) without either, or every forge
  run on it is over without its pull request closing (the issue was closed, unlabelled or
  unassigned, or the branch ended before a pull request was opened).
- **open**: none of these yet — its branch is live, and a forge run on it, if any, is not over.

A change counts under the model that served most of its tokens and the runtime whose runs
used most of them (ties: the first name in order; no tokens at all: the first of its runs'
runtimes in order, and no model).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from fleet.ledger.records.changes import ChangeFacts
from fleet.ledger.records.lines import LineState

NO_RUNTIME = "?"
"""The runtime of a change whose runs have no report (runs from before reports were kept)."""
NO_MODEL = "(none)"
"""The model of a change whose runs used no tokens."""
_OVER = frozenset({"stopped", "ended"})  # forge runs over: ForgeRunState.is_over


class Outcome(enum.StrEnum):
    MERGED = "merged"
    CLOSED = "closed"  # closed unmerged
    ABANDONED = "abandoned"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Change:
    """One change as the report counts it."""

    facts: ChangeFacts
    outcome: Outcome
    decided_at: datetime | None  # when it was merged, closed or abandoned; None while open
    runtime: str
    model: str
    tokens: int
    cost_usd: float
    unpriced: int  # usage rows with tokens and no price: its dollars leave them out

    @property
    def time_to_merge(self) -> float | None:
        """Seconds from its branch's cut to its merge; ``None`` unless merged."""
        if self.outcome is not Outcome.MERGED or self.decided_at is None:
            return None
        return max(0.0, (self.decided_at - self.facts.created_at).total_seconds())


def outcome_of(facts: ChangeFacts) -> tuple[Outcome, datetime | None]:
    """What ``facts``' change came to, and when (see the module's words)."""
    merged = [f.pull_end_at for f in facts.forge if f.pull_end == "merged"]
    if merged:
        return Outcome.MERGED, merged[0]
    if facts.state is LineState.MERGED:
        return Outcome.MERGED, facts.ended_at
    closed = [f.pull_end_at for f in facts.forge if f.pull_end == "closed"]
    if closed:
        return Outcome.CLOSED, closed[0]
    if facts.state is LineState.DISCARDED:
        return Outcome.ABANDONED, facts.ended_at
    if facts.forge and all(f.state in _OVER for f in facts.forge):
        times = [f.ended_at for f in facts.forge if f.ended_at is not None]
        return Outcome.ABANDONED, max(times) if times else facts.ended_at
    return Outcome.OPEN, None


def _most(sums: dict[str, int]) -> str | None:
    """The key with the largest sum, the first in order on a tie."""
    if not sums:
        return None
    return min(sums, key=lambda key: (-sums[key], key))


def change_of(facts: ChangeFacts) -> Change:
    """``facts`` as the report counts it: its outcome, runtime, model and sums."""
    outcome, at = outcome_of(facts)
    runtimes: dict[str, int] = {}
    models: dict[str, int] = {}
    for use in facts.use:
        runtime = use.runtime or NO_RUNTIME
        runtimes[runtime] = runtimes.get(runtime, 0) + use.tokens
        if use.model is not None and use.tokens > 0:
            models[use.model] = models.get(use.model, 0) + use.tokens
    return Change(
        facts=facts,
        outcome=outcome,
        decided_at=at,
        runtime=_most(runtimes) or NO_RUNTIME,
        model=_most(models) or NO_MODEL,
        tokens=sum(use.tokens for use in facts.use),
        cost_usd=sum(use.cost_usd for use in facts.use),
        unpriced=sum(use.unpriced for use in facts.use),
    )


def in_window(change: Change, since: datetime) -> bool:
    """Whether ``change`` belongs to a report since ``since``: decided then or later, or
    still open with a run started then or later."""
    if change.outcome is Outcome.OPEN:
        last = change.facts.last_run_at
        return last is not None and last >= since
    return change.decided_at is not None and change.decided_at >= since
