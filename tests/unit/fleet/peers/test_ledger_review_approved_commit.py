"""An approval is of one commit, over a real ledger (SQLite and PostgreSQL) and the real
admission: a later commit on the line asks the next round while rounds are left — the task
saying which commit was approved — or, with none left, marks the line changed since it was
approved (the task and a refused review message say which commit was approved and which is
the tip); a forge run's pull request is held each time; the approved commit itself asks
nothing again."""

from __future__ import annotations

from dataclasses import replace

from fleet.events import EventKind, FleetEvent
from fleet.model import AgentState
from fleet.names import AgentName
from fleet.repos.schema import ReviewPolicy
from tests.unit.fleet.peers.review_rig import BASE, COMMIT, Rig

LATER = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"


async def _approved(rig: Rig, rounds: int, forge_run: int | None = None) -> int:
    """Task ``coder`` works on, its round 1 approved at :data:`COMMIT`; the task's id."""
    task = await rig.working_task(forge_run=forge_run)
    policy = ReviewPolicy(agent="reviewer", rounds=rounds)
    first = await rig.stage.begin(rig.under(task, forge_run=forge_run), policy)
    assert first is not None
    await rig.stage.verdict("reviewer", True, "fine as it is")
    return task.id


async def test_a_commit_after_an_approval_asks_the_next_round_while_rounds_are_left(
    rig: Rig,
) -> None:
    """Rounds left: round 2 reads the later commit, the task naming the one approved."""
    task_id = await _approved(rig, rounds=2)
    task = await rig.ledger.tasks.task(task_id)
    assert task is not None
    policy = ReviewPolicy(agent="reviewer", rounds=2)
    second = await rig.stage.begin(replace(rig.under(task), commit=LATER), policy)
    assert second is not None and (second.round, second.commit) == (2, LATER)
    found = await rig.ledger.tasks.task(task_id)
    assert found is not None and found.state == "review"
    assert found.why == (
        "round 2 of 2: reviewer reviews 9f8e7d6c5b4a (changed since it was approved at "
        "a1b2c3d4e5f6)"
    )
    assert rig.forge.held == []  # a chat task: no pull request to hold
    assert await rig.stage.begin(rig.under(task), policy) is None  # A itself: approved


async def test_a_commit_after_the_last_approval_marks_the_line_changed_since(rig: Rig) -> None:
    """No round left: the task says the line changed since it was approved, naming both
    commits and the admin's fix; both threads are told, as a refused review message."""
    task_id = await _approved(rig, rounds=1)
    task = await rig.ledger.tasks.task(task_id)
    assert task is not None
    policy = ReviewPolicy(agent="reviewer", rounds=1)
    launched = len(rig.launched)
    assert await rig.stage.begin(replace(rig.under(task), commit=LATER), policy) is None
    assert len(rig.launched) == launched  # no round is asked
    found = await rig.ledger.tasks.task(task_id)
    assert found is not None and found.state == "review"
    assert found.why == (
        "changed since it was approved (reviewer approved a1b2c3d4e5f6; tip 9f8e7d6c5b4a, "
        "no round left): an admin's `merge --unreviewed fw/coder/5` lands it"
    )
    told = rig.heard[-1]
    assert (told.kind, told.state, told.sender, told.receiver) == (
        "review", "refused", "reviewer", "coder",
    )  # fmt: skip
    assert told.why.startswith("changed since it was approved: reviewer approved commit ")
    assert "its tip 9f8e7d6c5b4a is not reviewed" in told.why
    assert "commit a1b2c3d4e5f6" in told.text


async def test_a_forge_runs_head_after_an_approval_is_held_each_time(rig: Rig) -> None:
    """A forge run's new head after the approval holds its pull request, with rounds left
    (the next round asked) and with none."""
    task_id = await _approved(rig, rounds=2, forge_run=9)
    task = await rig.ledger.tasks.task(task_id)
    assert task is not None
    [approved] = await rig.ledger.reviews.of_task(task_id)
    policy = ReviewPolicy(agent="reviewer", rounds=2)
    second = await rig.stage.begin(replace(rig.under(task, forge_run=9), commit=LATER), policy)
    assert second is not None and second.round == 2
    assert rig.forge.held == [(approved.id, LATER)]


async def test_a_live_sessions_commit_after_the_approval_asks_the_next_round(rig: Rig) -> None:
    """A `send` into the coder's live session after the approval: its next turn over, with
    a later commit pushed, asks round 2 though the task never left review."""
    task = await rig.working_task()
    line_id = await rig.ledger.lines.add_line(
        repo="app", agent="coder", branch="fw/coder/1", base_ref="main", fork_sha=BASE,
        checkout="/nonexistent",
    )  # fmt: skip
    policy = ReviewPolicy(agent="reviewer", rounds=2)
    rig.task_runs.listen_for_review(rig.chat({"app": policy}).up_for_review)
    [coder_run] = task.runs
    rig.tips[line_id] = COMMIT
    await rig.task_runs.turn_over("coder", coder_run)
    await rig.stage.verdict("reviewer", True, "fine as it is")
    found = await rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review"
    rig.tips[line_id] = LATER  # what the session committed after the `send`
    await rig.task_runs.turn_over("coder", coder_run)
    first, second = await rig.ledger.reviews.of_task(task.id)
    assert (first.state, first.commit) == ("approved", COMMIT)
    assert (second.state, second.commit, second.round) == ("asked", LATER, 2)
    await rig.task_runs.turn_over("coder", coder_run)  # nothing new: no third round
    assert len(await rig.ledger.reviews.of_task(task.id)) == 2


async def test_a_round_after_the_approval_that_ends_without_a_verdict_says_the_admins_fix(
    rig: Rig,
) -> None:
    """Round 2 on a later commit ends with no verdict: the task says A was approved, not
    B, and that an admin's `merge --unreviewed` lands it — never a plain `merge`."""
    task_id = await _approved(rig, rounds=2)
    task = await rig.ledger.tasks.task(task_id)
    assert task is not None
    policy = ReviewPolicy(agent="reviewer", rounds=2)
    second = await rig.stage.begin(replace(rig.under(task), commit=LATER), policy)
    assert second is not None
    assert second.run_id is not None
    await rig.fleet.end("reviewer", second.run_id, "finished")  # no verdict
    ended = FleetEvent(
        AgentName("reviewer"), EventKind.ENDED, AgentState.EXITED, "", False, second.run_id
    )
    await rig.stage.hear(ended)
    found = await rig.ledger.tasks.task(task_id)
    assert found is not None and found.state == "review"
    assert found.why.endswith(
        "reviewer approved a1b2c3d4e5f6, not 9f8e7d6c5b4a: an admin's `merge --unreviewed "
        "fw/coder/5` lands it"
    ), found.why
