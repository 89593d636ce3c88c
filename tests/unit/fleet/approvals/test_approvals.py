"""Tests for the approvals service over a real ledger: one request per ask, the first answer
wins, timeouts apart from denials, caps, rules, delivery and its retry after a restart."""

from __future__ import annotations

import asyncio

import pytest

from fleet.approvals.service import AlreadyAnswered, ApprovalEvent, Approvals, UnknownApproval
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import (
    ApprovalPost,
    ApprovalRequest,
    ApprovalState,
    Ask,
    AskKind,
    Decision,
)
from fleet.permissions.rules import BadRule, parse_rule
from fleet.timing.clock import ManualClock
from tests.unit.fleet import approvals_rig as rig
from tests.unit.fleet.approvals_rig import approvals, told

__all__ = ["approvals", "told"]  # fixtures

ASK = Ask("req-1", "Bash", "rm -rf build", pattern="Bash(rm -rf build)")


async def opened(approvals: Approvals, ask: Ask = ASK, **kw: object) -> ApprovalRequest:
    return await rig.opened(approvals, ask, **kw)


async def test_the_same_ask_read_twice_is_one_request(approvals: Approvals) -> None:
    """An ask read again (after a restart) returns the request it already is."""
    events: list[ApprovalEvent] = []

    async def listen(event: ApprovalEvent) -> None:
        events.append(event)

    approvals.subscribe(listen)
    first = await opened(approvals)
    again = await opened(approvals)
    assert first.id == again.id and first.state is ApprovalState.OPEN
    assert [e.opened for e in events] == [True]
    assert [r.id for r in await approvals.pending()] == [first.id]


async def test_the_first_answer_wins_and_the_second_hears_who(
    approvals: Approvals, told: list[ApprovalRequest]
) -> None:
    """A second answer is refused, naming who answered first; the CLI is told once."""
    request = await opened(approvals)
    done = await approvals.answer(request.id, by="@ada:x", decision=Decision.ALLOW, how="reaction")
    assert done.state is ApprovalState.ALLOWED and done.answered_by == "@ada:x"
    with pytest.raises(AlreadyAnswered, match="already answered by @ada:x"):
        await approvals.answer(request.id, by="@bob:x", decision=Decision.DENY, how="command")
    assert [r.id for r in told] == [request.id]
    assert (await approvals.get(request.id)).delivered_at is not None


async def test_an_unknown_id_is_refused(approvals: Approvals) -> None:
    """An id no request has is refused with a pointer to `pending`."""
    with pytest.raises(UnknownApproval, match="pending"):
        await approvals.answer("zzzz", by="@ada:x", decision=Decision.ALLOW, how="command")


async def test_a_timeout_is_recorded_apart_from_a_denial(
    approvals: Approvals, clock: ManualClock, told: list[ApprovalRequest]
) -> None:
    """Past its deadline a request is denied as a timeout, which the CLI is told."""
    request = await opened(approvals)
    assert await approvals.expire() == []
    clock.advance(61)
    [ended] = await approvals.expire()
    assert ended.state is ApprovalState.TIMED_OUT and ended.decision is Decision.DENY
    assert ended.how == "timeout" and "60 s" in (ended.reason or "")
    assert told[-1].id == request.id
    with pytest.raises(AlreadyAnswered, match="timed out"):
        await approvals.answer(request.id, by="@ada:x", decision=Decision.ALLOW, how="command")


async def test_past_the_cap_an_ask_is_denied_at_once(
    approvals: Approvals, told: list[ApprovalRequest]
) -> None:
    """An agent with `max_open` requests open gets the next denied, with a reason it sees."""
    for n in range(3):
        await opened(approvals, Ask(f"r{n}", "Bash", f"echo {n}"))
    fourth = await opened(approvals, Ask("r3", "Bash", "echo 3"))
    assert fourth.state is ApprovalState.DENIED and fourth.how == "policy"
    assert "already wait" in (fourth.reason or "")
    assert told == [fourth]


async def test_always_teaches_a_rule_that_later_asks_pass_by(approvals: Approvals) -> None:
    """An `always` answer remembers its pattern: a matching ask later is allowed at once."""
    request = await opened(approvals)
    await approvals.answer(request.id, by="@ada:x", decision=Decision.ALWAYS, how="reaction")
    later = await opened(approvals, Ask("req-2", "Bash", "rm -rf build"))
    assert later.state is ApprovalState.ALLOWED and later.how == "rule"
    other = await opened(approvals, Ask("req-3", "Bash", "rm -rf /"))
    assert other.state is ApprovalState.OPEN


async def test_allow_rules_pass_and_questions_always_ask(approvals: Approvals) -> None:
    """A spec's allow rule passes a matching command; a question is never answered by rule."""
    passed = await opened(approvals, Ask("a", "Bash", "git status"), rules=("Bash(git *)",))
    assert passed.state is ApprovalState.ALLOWED
    question = Ask("q", "AskUserQuestion", "which branch?", kind=AskKind.QUESTION)
    asked = await opened(approvals, question, rules=("AskUserQuestion",))
    assert asked.state is ApprovalState.OPEN


async def test_a_run_that_ends_closes_its_asks(approvals: Approvals) -> None:
    """Open asks of a run that ended are closed with why; an answer then says so."""
    request = await opened(approvals)
    [closed] = await approvals.close_run(7, "the CLI exited while asking")
    assert closed.state is ApprovalState.CLOSED
    with pytest.raises(AlreadyAnswered, match="that request is closed"):
        await approvals.answer(request.id, by="@ada:x", decision=Decision.ALLOW, how="command")


async def test_an_answer_without_a_deliverer_is_delivered_later(
    ledger: Ledger, clock: ManualClock
) -> None:
    """An answer recorded while no channel could deliver it is listed as undelivered."""
    service = Approvals(ledger.approvals, clock)
    request = await opened(service)
    await service.answer(request.id, by="@ada:x", decision=Decision.DENY, how="reply", reason="no")
    [pending] = await service.undelivered(7)
    assert pending.id == request.id and pending.reason == "no"
    await service.mark_delivered(request.id)
    assert await service.undelivered(7) == []


async def test_a_waiter_wakes_on_the_answer(approvals: Approvals) -> None:
    """`wait` returns once the request is answered."""
    request = await opened(approvals)
    waiting = asyncio.create_task(approvals.wait(request.id))
    await asyncio.sleep(0)
    await approvals.answer(request.id, by="@ada:x", decision=Decision.ALLOW, how="command")
    assert (await asyncio.wait_for(waiting, 5)).state is ApprovalState.ALLOWED


async def test_posts_find_their_request(approvals: Approvals) -> None:
    """A chat message that showed a request leads back to it (for reactions)."""
    request = await opened(approvals)
    await approvals.record_post(ApprovalPost(request.id, "matrix", "!r:x", "$t", "$e"))
    found = await approvals.post_at("matrix", "$e")
    assert found is not None and found.id == request.id
    assert await approvals.post_at("matrix", "$other") is None


def test_rules_parse_and_match() -> None:
    """Rules are `Tool` or `Tool(pattern)`; CLI tool names match their portable names."""
    assert parse_rule("Bash(git *)").matches("bash", "git push origin main")
    assert not parse_rule("Bash(git *)").matches("Bash", "rm -rf /")
    assert parse_rule("Edit").matches("fileChange", "src/app.py")
    with pytest.raises(BadRule, match="not a rule"):
        parse_rule("Bash(git *")


async def test_a_deny_rule_refuses_at_once_whatever_allows_it(
    approvals: Approvals, told: list[ApprovalRequest]
) -> None:
    """An ask matching the agent's `deny:` rules is denied unasked, even where an allow
    rule or an `always` matches too; the CLI is told, with the rule in the reason."""
    refused = await opened(
        approvals,
        Ask("d", "Bash", "git push --force"),
        rules=("Bash(git *)",),
        deny=("Bash(git push *)",),
    )
    assert refused.state is ApprovalState.DENIED and refused.how == "rule"
    assert "Bash(git push *)" in (refused.reason or "")
    assert told == [refused]
    passed = await opened(
        approvals,
        Ask("p", "Bash", "git status"),
        rules=("Bash(git *)",),
        deny=("Bash(git push *)",),
    )
    assert passed.state is ApprovalState.ALLOWED
