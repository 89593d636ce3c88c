"""A forge run an older version kept queued in the forge store alone (its second queue)
is placed in the spawn queue once at start, where the one queue starts it."""

from __future__ import annotations

from datetime import UTC, datetime

from fleet.forge.runs.queued import queue_left_runs
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunState, NewForgeRun, Slug
from fleet.supervisor.admission.held import request_of
from fleet.supervisor.admission.queue import LaunchQueue
from fleet.timing.clock import ManualClock
from tests.unit.fleet.supervisor.test_admission import Budgets, Launches
from tests.unit.fleet.supervisor.test_launch_contract import Tasks, gate

T = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WHY = "coder works on acme/app#9 until its PR closes"


async def left_queued(ledger: Ledger, issue: int, state: ForgeRunState) -> int:
    """A forge run of coder on ``issue``, in ``state`` as an older version left it."""
    added = await ledger.forge.add_forge_run(NewForgeRun(
        forge="gh", repo="app", slug=Slug("acme", "app"), issue=issue, title="Fix it",
        agent="coder", branch=f"fw/coder/issue-{issue}", requester="ann",
        issue_url=f"https://github.com/acme/app/issues/{issue}",
    ))  # fmt: skip
    assert added is not None
    key = added.id
    await ledger.forge.update_forge_run(key, state=state, summary=WHY)
    return key


async def test_a_run_left_queued_by_an_older_version_is_placed_in_the_spawn_queue_once(
    ledger: Ledger,
) -> None:
    """Each queued forge run with no place in the spawn queue gets one (origin forge, its
    run's key, its status's words, its issue held with it), in its run's order; a second
    start places nothing again, and a working run is left alone."""
    admission = gate(ledger, Launches(), Budgets(True), Tasks())
    queue = LaunchQueue(store=ledger.spawn_queue, admission=admission, clock=ManualClock(T))
    first = await left_queued(ledger, 12, ForgeRunState.QUEUED)
    await left_queued(ledger, 9, ForgeRunState.WORKING)
    second = await left_queued(ledger, 13, ForgeRunState.QUEUED)
    assert await queue_left_runs(ledger.forge, queue) == 2
    entries = await queue.entries()
    assert [(e.origin, e.ref, e.agent, e.reason) for e in entries] == [
        ("forge", str(first), "coder", WHY),
        ("forge", str(second), "coder", WHY),
    ]
    held = request_of(entries[0])
    assert held is not None and held.origin == "forge"
    assert held.issue is not None and held.issue.said() == "acme/app#12"
    assert await queue_left_runs(ledger.forge, queue) == 0
    assert len(await queue.entries()) == 2
