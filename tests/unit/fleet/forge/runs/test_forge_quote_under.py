"""A forge's `quote_under:` is carried on its runs' launches, the limit the admission holds
their quotes to (what a refusal over it says on the issue is test_fleet_launcher's)."""

from __future__ import annotations

from fleet.forge.model import EventKind
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunState
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import WorkRig, event, forge_entry


async def test_the_forge_s_quote_under_is_carried_on_the_launch(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A forge entry's `quote_under:` is the limit its runs' launches carry; none: none."""
    limited = WorkRig.make(ledger, clock, entry=forge_entry(quote_under=2.5))
    await limited.started()
    assert limited.launcher.quote_unders == [2.5]


async def test_a_forge_without_quote_under_launches_without_a_limit(rig: WorkRig) -> None:
    await rig.started()
    assert rig.launcher.quote_unders == [None]


async def test_a_next_run_on_the_line_carries_the_forge_s_quote_under_too(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A review that finds no session starts the next run on the same line: under the
    forge's `quote_under:` as the first run was, never without it."""
    limited = WorkRig.make(ledger, clock, entry=forge_entry(quote_under=2.5))
    limited.launcher.sessionless.add("coder")  # no session once it exited: a next run
    record = await limited.started()
    await ledger.forge.update_forge_run(
        record.id, pull=4, state=ForgeRunState.WAITING, done_signal="agent", done_status="ok"
    )
    limited.launcher.running.discard(record.agent)
    review = event(EventKind.REVIEW, 4, is_pull=True, review_state="changes_requested",
                   body="Also the cookie.")  # fmt: skip
    assert "next run on" in await limited.deliver(review)  # type: ignore[arg-type]
    assert limited.launcher.named("start_on_line")
    assert limited.launcher.quote_unders == [2.5, 2.5]
