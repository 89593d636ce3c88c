"""The approval timeouts job: requests past their deadline are denied as timeouts."""

from __future__ import annotations

from pathlib import Path

from fleet.approvals.service import Approvals
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalState, Ask
from fleet.timing.clock import ManualClock
from scheduler.approvals_job import expire_approvals
from tests.fakes.doubles.job_context import job_context
from tests.unit.chat_fakes import T0


async def test_requests_past_their_deadline_time_out_others_stay_open(tmp_path: Path) -> None:
    """Each run times out what is past its deadline, once; a later deadline waits."""
    clock = ManualClock(T0)
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    approvals = Approvals(ledger.approvals, clock)
    ctx = job_context(approvals=approvals, clock=clock)
    try:
        opened = {}
        for native, wait in (("soon", 60), ("later", 600)):
            opened[native] = await approvals.open(
                agent="c1",
                run_id=1,
                channel="x",
                ask=Ask(native, "Bash", "ls"),
                wait_seconds=wait,
                max_open=5,
                starter=None,
            )
        assert await expire_approvals(ctx) == 0
        clock.advance(61)
        assert await expire_approvals(ctx) == 1
        assert await expire_approvals(ctx) == 0
        soon = await approvals.get(opened["soon"].id)
        later = await approvals.get(opened["later"].id)
        assert soon.state is ApprovalState.TIMED_OUT and soon.how == "timeout"
        assert later.state is ApprovalState.OPEN
    finally:
        await ledger.close()


async def test_without_approvals_the_job_does_nothing() -> None:
    """A context without an approvals service (none to time out): nothing happens."""
    assert await expire_approvals(job_context(approvals=None)) == 0
