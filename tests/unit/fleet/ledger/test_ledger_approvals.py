"""The ledger's ``approvals`` and ``approval_posts``, on SQLite and PostgreSQL: the request a
message shows, found in one read; an answer that counts once, the row as it is after it."""

from __future__ import annotations

import pytest

from fleet.errors import LeaseLost
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalPost, ApprovalState, Ask, Decision
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0

ASK = Ask("toolu_1", "Bash", "rm -rf build", pattern="Bash(rm -rf build)")


async def test_the_request_a_message_shows_is_found_by_its_event(ledger: Ledger) -> None:
    """Each post of a request finds it, on its own connector only; another event finds none."""
    request, _ = await ledger.approvals.open_approval(
        agent="coder", run_id=3, channel="hook", ask=ASK, deadline=T0, starter=None
    )
    await ledger.approvals.record_approval_post(
        ApprovalPost(request.id, "matrix", "!room:hs", "$root", "$shown")
    )
    await ledger.approvals.record_approval_post(
        ApprovalPost(request.id, "discord", "42", None, "1001")
    )
    assert await ledger.approvals.approval_shown_by("matrix", "$shown") == request
    assert await ledger.approvals.approval_shown_by("discord", "1001") == request
    assert await ledger.approvals.approval_shown_by("discord", "$shown") is None
    assert await ledger.approvals.approval_shown_by("matrix", "$other") is None


async def test_the_first_answer_counts_and_each_gets_the_row_as_it_is(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The first answer wins and gets its own row back; a second loses and gets the first's;
    an unknown id gets nothing."""
    request, _ = await ledger.approvals.open_approval(
        agent="coder", run_id=3, channel="hook", ask=ASK, deadline=T0, starter=None
    )
    clock.advance(5)
    first, won = await ledger.approvals.answer_approval(
        request.id,
        state=ApprovalState.ALLOWED,
        decision=Decision.ALLOW,
        by="@ann:hs on matrix",
        how="reaction",
        reason=None,
    )
    assert won and first is not None
    assert (first.state, first.answered_by, first.how) == (
        ApprovalState.ALLOWED,
        "@ann:hs on matrix",
        "reaction",
    )
    assert first.answered_at is not None and first.answered_at > T0
    assert first == await ledger.approvals.approval(request.id)
    later, won = await ledger.approvals.answer_approval(
        request.id,
        state=ApprovalState.DENIED,
        decision=Decision.DENY,
        by="@bob:hs on matrix",
        how="reaction",
        reason="no",
    )
    assert not won and later == first
    nobody, won = await ledger.approvals.answer_approval(
        "zzzz",
        state=ApprovalState.DENIED,
        decision=Decision.DENY,
        by=None,
        how="timeout",
        reason=None,
    )
    assert (nobody, won) == (None, False)


async def test_an_answer_is_refused_once_the_lease_is_lost(ledger: Ledger) -> None:
    """Fenced (a standby's lease), an answer is written only while the lease is held: one
    lost is refused and the request stays open for the new holder."""
    lease = await ledger.leases.acquire_lease("orchestrator", "a", ttl=10)
    request, _ = await ledger.approvals.open_approval(
        agent="coder", run_id=3, channel="hook", ask=ASK, deadline=T0, starter=None
    )
    ledger.fence("orchestrator", "a", lease.epoch + 1)  # an epoch it does not hold
    with pytest.raises(LeaseLost):
        await ledger.approvals.answer_approval(
            request.id,
            state=ApprovalState.ALLOWED,
            decision=Decision.ALLOW,
            by="@ann:hs on matrix",
            how="reaction",
            reason=None,
        )
    ledger.fence("orchestrator", "a", lease.epoch)
    assert (await ledger.approvals.approval(request.id)).state is ApprovalState.OPEN  # type: ignore[union-attr]
    done, won = await ledger.approvals.answer_approval(
        request.id,
        state=ApprovalState.ALLOWED,
        decision=Decision.ALLOW,
        by="@ann:hs on matrix",
        how="reaction",
        reason=None,
    )
    assert won and done is not None and done.state is ApprovalState.ALLOWED
