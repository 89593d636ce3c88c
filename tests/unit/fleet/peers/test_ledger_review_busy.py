"""A review agent its author keeps at work, over a real ledger (SQLite and PostgreSQL)
and the real admission: a round asked while the reviewer's run took the author's message,
or works on a task the author handed on, ends at once saying "no verdict: the reviewer is
busy with the author's work" and how; the work is a human's. A run the author had no hand
in — another agent's message in it — ends the round as a reviewer already running."""

from __future__ import annotations

from fleet.ledger.records.peers import NewMessage
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask
from fleet.peers.review.busy import BUSY, busy_with_author
from fleet.peers.review.handoff import ReviewStores
from fleet.supervisor.admission.request import LaunchRequest, Started
from tests.unit.fleet.peers.review_rig import POLICY, Rig


async def _woken_by(rig: Rig, sender: str) -> int:
    """The reviewer's run started, as ``wake: start`` starts it, with ``sender``'s
    message delivered into it; the message's id."""
    message = await rig.ledger.messages.add_message(
        NewMessage(sender=sender, receiver="reviewer", text="look at the logs")
    )
    await rig.fleet.launch("reviewer")
    run = await rig.ledger.runs.last_run("reviewer")
    assert run is not None
    assert await rig.ledger.messages.delivered(message.id, run.id)
    return message.id


async def test_a_reviewer_woken_by_its_author_ends_the_round_saying_so(rig: Rig) -> None:
    """The author's message woke the reviewer: the round ends, busy with its work."""
    task = await rig.working_task()
    message = await _woken_by(rig, "coder")
    assert await rig.stage.begin(rig.under(task), POLICY) is None
    [review] = await rig.ledger.reviews.of_task(task.id)
    assert review.state == "ended" and review.verdict.startswith(BUSY)
    assert f"took coder's message #{message}" in review.verdict
    found = await rig.ledger.tasks.task(task.id)
    assert found is not None and found.state == "review" and found.why.startswith(BUSY)
    assert "no review by" not in found.why and "a human reviews it now" in found.why
    assert rig.stopped == []  # the reviewer's own run is left alone


async def test_a_reviewer_on_a_task_its_author_handed_on_ends_the_round(rig: Rig) -> None:
    """The reviewer works on a task the author handed on (started by an operator's
    ``task start``, so no message went into its run): busy with the author's work."""
    task = await rig.working_task()
    handed = await rig.ledger.tasks.add_task(
        NewTask("Read the logs", "task", "agent coder", agent="reviewer"), NO_PROJECTION
    )
    started = await rig.admission.admit(LaunchRequest("reviewer", task=handed.id))
    assert isinstance(started, Started) and started.outcome.started
    assert await rig.stage.begin(rig.under(task), POLICY) is None
    [review] = await rig.ledger.reviews.of_task(task.id)
    assert review.verdict.startswith(BUSY)
    assert f"works on task #{handed.id}, handed on by coder" in review.verdict


async def test_a_reviewer_busy_with_another_agents_words_is_only_already_running(
    rig: Rig,
) -> None:
    """Another agent's message in the reviewer's run is not the author's work: the
    round ends as a reviewer already running, and nothing says busy with the author's."""
    task = await rig.working_task()
    await _woken_by(rig, "migrator")
    stores = ReviewStores(
        rig.ledger.reviews, rig.ledger.messages, rig.ledger.tasks, rig.ledger.runs,
        rig.ledger.spawn_queue,
    )  # fmt: skip
    assert await busy_with_author(stores, "reviewer", "coder") is None
    assert await rig.stage.begin(rig.under(task), POLICY) is None
    [review] = await rig.ledger.reviews.of_task(task.id)
    assert "already running" in review.verdict and BUSY not in review.verdict
    found = await rig.ledger.tasks.task(task.id)
    assert found is not None and "no review by reviewer" in found.why
