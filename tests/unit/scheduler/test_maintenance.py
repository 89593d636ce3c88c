"""The daily ledger upkeep job: processed-event ids older than a week are forgotten."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from scheduler.maintenance import KEEP_EVENTS, prune_ledger
from tests.fakes.doubles.job_context import job_context
from tests.unit.chat_fakes import T0


async def test_event_ids_older_than_a_week_are_forgotten_newer_ones_kept(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    ctx = job_context(upkeep=ledger.chat, clock=clock)
    try:
        assert await ledger.chat.claim_event("matrix", "$old")
        clock.advance(KEEP_EVENTS.total_seconds() - 60)
        assert await ledger.chat.claim_event("matrix", "$recent")
        clock.advance(120)  # $old is now a week and a minute old
        assert await prune_ledger(ctx) == 1
        assert not await ledger.chat.claim_event("matrix", "$recent")  # still remembered
        assert await ledger.chat.claim_event("matrix", "$old")  # forgotten, claimable again
        assert await prune_ledger(ctx) == 0
    finally:
        await ledger.close()


def test_a_week_is_longer_than_any_replay() -> None:
    """Replays come within minutes (a missed schedule run is made up within five)."""
    from scheduler.schedule_job import MISFIRE_GRACE

    assert KEEP_EVENTS > timedelta(days=1) > MISFIRE_GRACE
