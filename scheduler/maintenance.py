"""Ledger upkeep as a daily job: processed-event ids are kept for :data:`KEEP_EVENTS`, then
forgotten.

Event ids are claimed so a replayed chat event or a schedule firing twice is handled once;
replays come within minutes (a sync token lost in a crash, a missed run made up at start,
five minutes at most), so a week is ample, and without pruning the table grows with every
message the bot ever saw.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from scheduler.context import JobContext

log = logging.getLogger(__name__)

PRUNE_JOB_ID: Final = "ledger-prune"
PRUNE_JOB_REF: Final = "scheduler.maintenance:prune_ledger"
PRUNE_EVERY: Final = 86_400.0  # seconds
KEEP_EVENTS: Final = timedelta(days=7)


async def prune_ledger(ctx: JobContext) -> int:
    """Forget processed events older than :data:`KEEP_EVENTS`; how many were forgotten."""
    pruned = await ctx.upkeep.prune_events(ctx.clock.now() - KEEP_EVENTS)
    log.info("ledger upkeep: forgot %d processed event id(s)", pruned)
    return pruned
