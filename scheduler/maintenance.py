"""Ledger upkeep as a daily job: processed-event ids are kept for :data:`KEEP_EVENTS`, then
forgotten.

Event ids are claimed so a replayed chat event or a schedule firing twice is handled once;
replays come within minutes (a sync token lost in a crash, a missed run made up at start,
five minutes at most), so a week is ample, and without pruning the table grows with every
message the bot ever saw.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Final, Protocol, runtime_checkable

from scheduler import jobs
from scheduler.jobs import SchedulerError

log = logging.getLogger(__name__)

PRUNE_JOB_ID: Final = "ledger-prune"
PRUNE_JOB_REF: Final = "scheduler.maintenance:prune_ledger"
PRUNE_EVERY: Final = 86_400.0  # seconds
KEEP_EVENTS: Final = timedelta(days=7)


@runtime_checkable
class Upkeep(Protocol):
    """What the job needs: the ledger's pruning and the injected clock's time."""

    async def prune_events(self, before: datetime) -> int: ...

    def now(self) -> datetime: ...


async def prune_ledger(*, context: str) -> int:
    """Forget processed events older than :data:`KEEP_EVENTS`; how many were forgotten."""
    upkeep = jobs.context(context)
    if not isinstance(upkeep, Upkeep):
        raise SchedulerError(f"context {context!r} is a {type(upkeep).__name__}, not upkeep")
    pruned = await upkeep.prune_events(upkeep.now() - KEEP_EVENTS)
    log.info("ledger upkeep: forgot %d processed event id(s)", pruned)
    return pruned
