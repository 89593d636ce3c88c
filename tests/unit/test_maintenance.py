"""The daily ledger upkeep job: processed-event ids older than a week are forgotten."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from fleet.clock import ManualClock
from fleet.ledger import Ledger
from scheduler import jobs
from scheduler.jobs import SchedulerError
from scheduler.maintenance import KEEP_EVENTS, prune_ledger
from tests.unit.chat_fakes import T0


class Upkeep:
    def __init__(self, ledger: Ledger, clock: ManualClock) -> None:
        self.ledger, self.clock = ledger, clock

    async def prune_events(self, before: datetime) -> int:
        return await self.ledger.prune_events(before)

    def now(self) -> datetime:
        return self.clock.now()


async def test_event_ids_older_than_a_week_are_forgotten_newer_ones_kept(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    jobs.register_context("upkeep-test", Upkeep(ledger, clock))
    try:
        assert await ledger.claim_event("matrix", "$old")
        clock.advance(KEEP_EVENTS.total_seconds() - 60)
        assert await ledger.claim_event("matrix", "$recent")
        clock.advance(120)  # $old is now a week and a minute old
        assert await prune_ledger(context="upkeep-test") == 1
        assert not await ledger.claim_event("matrix", "$recent")  # still remembered
        assert await ledger.claim_event("matrix", "$old")  # forgotten, claimable again
        assert await prune_ledger(context="upkeep-test") == 0
    finally:
        jobs.unregister_context("upkeep-test")
        await ledger.close()


async def test_a_context_that_is_not_upkeep_is_refused() -> None:
    jobs.register_context("upkeep-wrong", object())
    try:
        with pytest.raises(SchedulerError, match="not upkeep"):
            await prune_ledger(context="upkeep-wrong")
    finally:
        jobs.unregister_context("upkeep-wrong")


def test_a_week_is_longer_than_any_replay() -> None:
    """Replays come within minutes (a missed schedule run is made up within five)."""
    from scheduler.schedules import MISFIRE_GRACE

    assert KEEP_EVENTS > timedelta(days=1) > MISFIRE_GRACE
