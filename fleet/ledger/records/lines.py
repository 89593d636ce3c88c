"""What the ledger's lines store (:mod:`fleet.ledger.stores.code.lines`) keeps of a line: a run's
branch
and checkout, from the run that cut it to its merge or discard."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class LineState(enum.StrEnum):
    """Where a line (a run's branch and checkout) is in its life."""

    LIVE = "live"
    MERGED = "merged"
    DISCARDED = "discarded"


@dataclass(frozen=True, slots=True)
class LineRecord:
    """One line as the ledger keeps it (:mod:`fleet.ledger.stores.code.lines`)."""

    id: int
    repo: str
    agent: str
    line: int  # the run that cut the branch
    branch: str
    base_ref: str
    fork_sha: str
    checkout: str
    state: LineState
    created_at: datetime
    last_run: int | None = None
    head_sha: str | None = None
    pushed_sha: str | None = None
    merged_sha: str | None = None
    ended_at: datetime | None = None
    copied: tuple[str, ...] = field(default_factory=tuple)
    co_author: str | None = None  # ``Name <email>`` of the operator who asked for the run
    host: str = "local"  # where ``checkout`` lies: this machine, or an SSH host's name
