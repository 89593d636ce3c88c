"""What holds a line from landing by its review (:mod:`fleet.repos.landing.approval`): the
newest round that approved holds the line to its commit, whatever came after it — a later
tip is refused naming both commits, the round that reads it and the admin's fix; a tip that
is the approved commit, a line never approved and a repository without a review stage hold
nothing. Over a real ledger for the store's rounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fleet.ledger import Ledger
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.ledger.records.peers import NewReview, ReviewRecord, ReviewState
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask
from fleet.repos.landing.approval import ApprovalHold, Unapproved, standing, unapproved
from fleet.repos.schema import ReviewPolicy

A = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
B = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LINE = LineRecord(1, "app", "coder", 1, "fw/coder/1", "main", "0" * 40, "/w", LineState.LIVE, T0)


def _round(n: int, state: ReviewState, commit: str, rounds: int = 2) -> ReviewRecord:
    return ReviewRecord(
        n, 1, "coder", "reviewer", n, rounds, "app", "fw/coder/1", commit, None, None, state,
        "", T0, None,
    )  # fmt: skip


def test_a_tip_after_the_approved_commit_is_refused_naming_both_and_the_fix() -> None:
    """Approved at A, tip B, round 2 reading B: refused with A, B, the round and the fix."""
    rounds = [_round(1, "approved", A), _round(2, "asked", B)]
    why = unapproved(LINE, B, rounds, "merge")
    assert why is not None
    assert why.startswith("fw/coder/1 of app changed since it was approved: reviewer ")
    assert "approved commit a1b2c3d4e5f6 (round 1 of 2), and its tip is 9f8e7d6c5b4a" in why
    assert "round 2 of 2 of its review (reviewer) reads 9f8e7d6c5b4a now" in why
    assert "Nothing was merged" in why
    assert "an admin's `merge --unreviewed fw/coder/1` lands it as it is" in why
    pushed = unapproved(LINE, B, rounds[:1], "push")
    assert pushed is not None and "Nothing was pushed" in pushed
    assert "no round of its review has approved it" in pushed
    assert "`push --unreviewed fw/coder/1` pushes it" in pushed


def test_only_a_standing_approval_of_another_commit_holds() -> None:
    """The approved commit itself, no rounds: nothing holds; a later round's changes leave
    the approval standing."""
    assert unapproved(LINE, A, [_round(1, "approved", A)], "merge") is None
    later_changes = [_round(1, "approved", A), _round(2, "changes", B)]
    assert standing(later_changes) == later_changes[0]
    assert unapproved(LINE, B, later_changes, "merge") is not None
    assert unapproved(LINE, A, later_changes, "merge") is None  # A itself still lands
    ended = [_round(1, "approved", A), _round(2, "ended", B)]
    assert standing(ended) == ended[0]  # no verdict on B: A's approval still stands
    assert unapproved(LINE, B, [], "merge") is None
    assert unapproved(LINE, None, [_round(1, "approved", A)], "merge") is None


async def test_the_hold_reads_the_lines_own_rounds_and_its_repositorys_stage(
    ledger: Ledger,
) -> None:
    """Rounds of the line's branch since it was cut count; a repository without a review
    stage holds nothing."""
    task = await ledger.tasks.add_task(NewTask("Fix it", "chat", "op"), NO_PROJECTION)
    new = NewReview(task.id, "coder", "reviewer", 1, 1, "app", "fw/coder/1", A)
    asked = await ledger.reviews.add_review(new)
    assert await ledger.reviews.answer(asked.id, "approved", "fine")
    line = LineRecord(
        1, "app", "coder", 1, "fw/coder/1", "main", "0" * 40, "/w", LineState.LIVE,
        asked.asked_at,
    )  # fmt: skip
    policy = ReviewPolicy(agent="reviewer", rounds=1)
    held = ApprovalHold(ledger.reviews, lambda repo: policy if repo == "app" else None)
    why = await held.why_not(line, B, "merge")
    assert why is not None and "approved commit a1b2c3d4e5f6" in why
    assert await held.why_not(line, A, "merge") is None
    approved = await held.approved(line)
    assert approved is not None and approved.commit == A
    other = LineRecord(2, "docs", "coder", 2, "fw/coder/1", "main", "0" * 40, "/w",
                       LineState.LIVE, asked.asked_at)  # fmt: skip
    assert await held.why_not(other, B, "merge") is None  # no review stage there
    nobody = ApprovalHold(ledger.reviews, lambda repo: None)
    assert await nobody.why_not(line, B, "merge") is None
    later = replace(line, id=3, created_at=asked.asked_at + timedelta(hours=1))
    assert await held.why_not(later, B, "merge") is None  # the branch's name, a later line


async def test_a_held_push_goes_only_once_its_pull_request_is_a_draft(ledger: Ledger) -> None:
    """A push of a tip the approval does not cover is refused, unless a forge run's push
    has its open pull request made a draft first; the approved commit is pushed as it is."""
    task = await ledger.tasks.add_task(NewTask("Fix it", "chat", "op"), NO_PROJECTION)
    new = NewReview(task.id, "coder", "reviewer", 1, 1, "app", "fw/coder/1", A)
    asked = await ledger.reviews.add_review(new)
    assert await ledger.reviews.answer(asked.id, "approved", "fine")
    line = replace(LINE, created_at=asked.asked_at)
    policy = ReviewPolicy(agent="reviewer", rounds=1)
    held = ApprovalHold(ledger.reviews, lambda repo: policy)
    drafted: list[tuple[str, str]] = []
    open_pull = True

    async def drafter(approved: ReviewRecord, tip: str) -> bool:
        drafted.append((approved.commit, tip))
        return open_pull

    await held.may_push(line, A, draft=False)  # the approved commit: nothing asked
    with pytest.raises(Unapproved, match="Nothing was pushed"):
        await held.may_push(line, B, draft=True)  # no forge to make a draft: refused
    held = ApprovalHold(ledger.reviews, lambda repo: policy, drafter)  # with the forges'
    with pytest.raises(Unapproved, match="approved commit a1b2c3d4e5f6"):
        await held.may_push(line, B, draft=False)  # the push verb: never by a draft
    assert drafted == []
    await held.may_push(line, B, draft=True)  # its pull request a draft first: pushed
    assert drafted == [(A, B)]
    open_pull = False
    with pytest.raises(Unapproved):
        await held.may_push(line, B, draft=True)  # no open pull request: refused
