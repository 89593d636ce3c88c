"""What the ledger's changes store (:mod:`fleet.ledger.stores.code.changes`) reads of one change —
a line, the branch an agent's runs worked on — for the cost of a merged change: the line's
life, how the pull requests of its forge runs ended, and what its runs spent, summed by
runtime and model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet.ledger.records.lines import LineState


@dataclass(frozen=True, slots=True)
class ChangeUse:
    """What a change's runs of one runtime spent on one model: the sums of their metered
    usage rows (tokens of every kind but reasoning, which output already counts; dollars of
    the priced rows; how many rows with tokens had no price)."""

    runtime: str | None  # the run's CLI as its report says (None: a run without a report)
    model: str | None  # the model that served the rows (None: runs without a usage row)
    tokens: int
    cost_usd: float
    unpriced: int


@dataclass(frozen=True, slots=True)
class ForgeEnd:
    """One forge run on the change: where it is, and how its ``end`` audit says it ended
    (``merged``, ``closed``, or ``None``: not ended by its pull request)."""

    state: str  # a :class:`fleet.ledger.records.forge.ForgeRunState` value
    ended_at: datetime | None
    pull_end: str | None
    pull_end_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChangeFacts:
    """One change as the ledger has it: its line, the forge runs that worked on it, the
    number of its runs and of the approvals they asked, and what they spent."""

    line_id: int
    agent: str
    repo: str
    state: LineState
    created_at: datetime  # when its branch was cut
    ended_at: datetime | None  # when it was merged here or discarded
    last_run_at: datetime | None  # when its newest run started
    runs: int
    approvals: int
    use: tuple[ChangeUse, ...]
    forge: tuple[ForgeEnd, ...]
