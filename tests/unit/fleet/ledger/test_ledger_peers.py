"""Tests for the ledger's messages and reviews (migration 29), on SQLite and PostgreSQL: a
message is recorded with its receipt, delivered or refused once only, counted against its
sender's rate and its receiver's queue; a round of review waits for one verdict."""

from __future__ import annotations

from datetime import timedelta

from fleet.ledger import Ledger
from fleet.ledger.records.peers import NewMessage, NewReview
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask
from fleet.timing.clock import ManualClock


async def test_a_message_is_kept_with_its_receipt_and_delivered_once(
    ledger: Ledger, clock: ManualClock
) -> None:
    first = await ledger.messages.add_message(
        NewMessage("coder", "reviewer", "look at a.py", sender_run=3)
    )
    refused = await ledger.messages.add_message(
        NewMessage("coder", "ops", "hi", state="refused", why="ops is not in talks_to")
    )
    assert first.state == "queued" and first.sender_run == 3 and first.delivered_at is None
    assert refused.state == "refused" and refused.why == "ops is not in talks_to"
    assert [m.id for m in await ledger.messages.queued_for("reviewer")] == [first.id]
    assert await ledger.messages.count_queued("reviewer") == 1
    assert await ledger.messages.receivers_waited_for() == ["reviewer"]
    assert await ledger.messages.sent_since("coder", clock.now() - timedelta(hours=1)) == 1
    assert await ledger.messages.refused_since("coder", clock.now() - timedelta(hours=1)) == 1
    clock.advance(300)
    assert await ledger.messages.delivered(first.id, 7)
    assert not await ledger.messages.delivered(first.id, 8)  # once only
    assert not await ledger.messages.refused(first.id, "too late")
    done = await ledger.messages.message(first.id)
    assert done is not None and done.state == "delivered" and done.delivered_run == 7
    assert done.delivered_at is not None and done.delivered_at > done.sent_at
    assert await ledger.messages.queued_for("reviewer") == []
    clock.advance(7200)
    assert await ledger.messages.sent_since("coder", clock.now() - timedelta(hours=1)) == 0
    assert await ledger.messages.refused_since("coder", clock.now() - timedelta(hours=1)) == 0
    third = await ledger.messages.add_message(NewMessage("ops", "coder", "x", kind="task"))
    verdict = await ledger.messages.add_message(NewMessage("rev", "coder", "ok", kind="review"))
    # A task or a verdict is settled by whoever recorded it: it never waits in the queue
    # of messages; a task that waits for its peer to be free counts against its limit.
    assert await ledger.messages.queued_for("coder") == []
    assert await ledger.messages.count_queued("coder") == 1
    assert await ledger.messages.receivers_waited_for() == []
    assert await ledger.messages.delivered(verdict.id, None)
    assert await ledger.messages.refused(third.id, "coder was removed")
    made = await ledger.messages.add_message(
        NewMessage("ops", "coder", "y", kind="task", state="refused", why="no slot", task_id=5)
    )
    assert await ledger.messages.sent_since("ops", clock.now() - timedelta(hours=1)) == 1
    assert [m.id for m in await ledger.messages.recent("coder")] == [
        made.id,
        verdict.id,
        third.id,
        refused.id,
        first.id,
    ]
    assert [m.id for m in await ledger.messages.recent("reviewer", limit=1)] == [first.id]
    assert len(await ledger.messages.recent()) == 5
    assert await ledger.messages.message(999) is None


async def test_a_round_of_review_waits_for_one_verdict(ledger: Ledger) -> None:
    task = await ledger.tasks.add_task(NewTask("Fix login", "chat", "op"), NO_PROJECTION)
    asked = await ledger.reviews.add_review(
        NewReview(task.id, "coder", "reviewer", 1, 2, "app", "fw/coder/t", "abc123", 4)
    )
    assert asked.state == "asked" and not asked.last_round and asked.forge_run == 4
    assert await ledger.reviews.asked_of("reviewer") == asked
    assert await ledger.reviews.asked_of("coder") is None
    await ledger.reviews.bind_run(asked.id, 11)
    assert await ledger.reviews.answer(asked.id, "changes", "name the function")
    assert not await ledger.reviews.answer(asked.id, "approved", "fine")
    assert await ledger.reviews.asked_of("reviewer") is None
    second = await ledger.reviews.add_review(
        NewReview(task.id, "coder", "reviewer", 2, 2, "app", "fw/coder/t", "def456")
    )
    assert second.last_round
    rounds = await ledger.reviews.of_task(task.id)
    seen = [(r.round, r.state, r.run_id) for r in rounds]
    assert seen == [(1, "changes", 11), (2, "asked", None)]
    assert rounds[0].verdict == "name the function" and rounds[0].answered_at is not None
