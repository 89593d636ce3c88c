"""The door's ask from the agent's mode and rules (fleet.mcp.asking), over the approvals
service on a real ledger: a deny rule refuses naming it, ``full`` and allow rules relay,
``read-only`` refuses the rest, and ``ask`` / ``edits`` ask a person with the same ids,
answers, ``always``, cap, timeout and withdrawal as every other ask."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fleet.approvals.ask_door import AskTerms, ledger_terms
from fleet.approvals.service import Approvals
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, Ask, Decision
from fleet.mcp.asking import CHANNEL, McpAsks, ruled, shown_arguments
from fleet.mcp.hooks import McpCall, Verdict
from fleet.model import AgentSpec, DesiredState, PermissionMode, RunHandle
from fleet.names import AgentName
from fleet.timing.clock import Clock, ManualClock, SystemClock
from tests.polling import eventually
from tests.unit.fleet.approvals_rig import approvals, told

__all__ = ["approvals", "told"]  # fixtures

CALL = McpCall("coder", "srv", "echo", {"text": "hi @room", "n": 2})


def terms(
    mode: PermissionMode = PermissionMode.ASK,
    *,
    rules: tuple[str, ...] = (),
    deny: tuple[str, ...] = (),
    wait_seconds: float = 60.0,
    max_open: int = 3,
) -> AskTerms:
    return AskTerms(7, wait_seconds, max_open, "@sam:example.org", rules, deny, mode)


def asks(approvals: Approvals, clock: Clock, given: AskTerms | None) -> McpAsks:
    counter = iter(range(1, 1000))

    async def of(agent: str) -> AskTerms | None:
        return given if agent == "coder" else None

    return McpAsks(approvals, of, clock, ids=lambda: f"mcp-{next(counter)}", settle_seconds=0)


async def given_up(task: asyncio.Task[Verdict]) -> None:
    """Cancel a waiting call and let it withdraw its ask."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def pending(approvals: Approvals, count: int = 1) -> list[ApprovalRequest]:
    async def probe() -> list[ApprovalRequest]:
        found = await approvals.pending("coder")
        return found if len(found) >= count else []

    return await eventually(probe, f"{count} ask(s) open")


@pytest.mark.parametrize(
    ("given", "allowed", "why"),
    [
        (terms(deny=("mcp__srv",), rules=("mcp__srv__echo",)), False, "rule mcp__srv"),
        (terms(PermissionMode.FULL, deny=("mcp__srv__*",)), False, "rule mcp__srv__*"),
        (terms(PermissionMode.FULL), True, "full"),
        (terms(rules=("mcp__srv__echo",)), True, "rule mcp__srv__echo"),
        (terms(PermissionMode.READ_ONLY, rules=("mcp__srv",)), True, "rule mcp__srv"),
        (terms(PermissionMode.READ_ONLY), False, "read-only"),
    ],
    ids=["deny-wins", "deny-in-full", "full", "allow", "read-only-allowed", "read-only"],
)
def test_the_mode_and_rules_decide_without_asking(given: AskTerms, allowed: bool, why: str) -> None:
    """A deny rule refuses (naming it) in every mode; ``full`` and an allow rule relay;
    ``read-only`` refuses what no allow rule names."""
    verdict = ruled(CALL, given)
    assert verdict is not None and verdict.allowed is allowed and why in verdict.why


@pytest.mark.parametrize("mode", [PermissionMode.ASK, PermissionMode.EDITS])
def test_ask_and_edits_leave_the_call_to_a_person(mode: PermissionMode) -> None:
    """Neither ``ask`` nor ``edits`` decides an MCP call by itself; a rule for another tool or
    a server whose name starts alike changes nothing."""
    assert ruled(CALL, terms(mode, rules=("mcp__srv__echo_all", "mcp__srv2", "Bash"))) is None


async def test_a_deny_rule_opens_no_request(approvals: Approvals, clock: ManualClock) -> None:
    """A call a rule refuses is never asked in chat."""
    verdict = await asks(approvals, clock, terms(deny=("mcp__srv__echo",)))(CALL)
    assert not verdict.allowed and verdict.why == "refused by the rule mcp__srv__echo"
    assert await approvals.pending() == []


async def test_a_call_asked_in_chat_and_allowed(approvals: Approvals, clock: ManualClock) -> None:
    """The ask is opened on the door's channel with the tool's rule name, the arguments as
    JSON and ``always`` teaching the tool's rule; a yes relays the call, naming who."""
    waiting = asyncio.create_task(asks(approvals, clock, terms())(CALL))
    [request] = await pending(approvals)
    assert (request.channel, request.tool, request.pattern) == (
        CHANNEL,
        "mcp__srv__echo",
        "mcp__srv__echo",
    )
    assert json.loads(request.subject) == {"text": "hi @room", "n": 2}
    assert (request.run_id, request.native_id) == (7, "mcp-1")
    await approvals.answer(request.id, by="@ada:x", decision=Decision.ALLOW, how="reaction")
    verdict = await waiting
    assert verdict.allowed and verdict.why == "allowed in chat by @ada:x"
    assert (await approvals.get(request.id)).delivered_at is not None


async def test_a_no_with_a_reason_refuses_and_says_it(
    approvals: Approvals, clock: ManualClock
) -> None:
    """A person's no is the call's refusal, with who said it and the reason."""
    waiting = asyncio.create_task(asks(approvals, clock, terms())(CALL))
    [request] = await pending(approvals)
    await approvals.answer(
        request.id, by="@ada:x", decision=Decision.DENY, how="reply", reason="not today"
    )
    verdict = await waiting
    assert not verdict.allowed and verdict.why == "denied in chat by @ada:x: not today"


async def test_always_lets_the_next_call_of_the_tool_pass(
    approvals: Approvals, clock: ManualClock
) -> None:
    """``always`` teaches the tool's rule: the next call of it, other arguments and all, is
    allowed by that rule; another tool of the server is still asked."""
    ask = asks(approvals, clock, terms())
    waiting = asyncio.create_task(ask(CALL))
    [request] = await pending(approvals)
    await approvals.answer(request.id, by="@ada:x", decision=Decision.ALWAYS, how="reaction")
    assert (await waiting).allowed
    again = await ask(McpCall("coder", "srv", "echo", {"text": "other"}))
    assert again.allowed and "mcp__srv__echo" in again.why
    other = asyncio.create_task(ask(McpCall("coder", "srv", "delete", {})))
    [asked] = await pending(approvals)
    assert asked.tool == "mcp__srv__delete"
    await given_up(other)


async def test_a_waiting_call_holds_no_other(approvals: Approvals, clock: ManualClock) -> None:
    """Two calls wait at once; the second answered returns while the first still waits."""
    ask = asks(approvals, clock, terms())
    first = asyncio.create_task(ask(CALL))
    second = asyncio.create_task(ask(McpCall("coder", "srv", "echo", {"text": "2"})))
    requests = await pending(approvals, 2)
    [later] = [r for r in requests if '"2"' in r.subject]
    await approvals.answer(later.id, by="@ada:x", decision=Decision.ALLOW, how="command")
    assert (await second).allowed and not first.done()
    await given_up(first)


async def test_a_timeout_denies_the_call(approvals: Approvals, clock: ManualClock) -> None:
    """Unanswered past the agent's timeout, the call is denied as a timeout."""
    waiting = asyncio.create_task(asks(approvals, clock, terms())(CALL))
    [request] = await pending(approvals)
    clock.advance(61)
    await approvals.expire()
    verdict = await waiting
    assert not verdict.allowed and "denied as a timeout" in verdict.why
    assert (await approvals.get(request.id)).state is ApprovalState.TIMED_OUT


async def test_the_ask_itself_expires_at_its_deadline(ledger: Ledger) -> None:
    """With nobody else expiring asks, the waiting call ends its own at the deadline."""
    service = Approvals(ledger.approvals, SystemClock())
    verdict = await asyncio.wait_for(
        asks(service, SystemClock(), terms(wait_seconds=0.3))(CALL), 10
    )
    assert not verdict.allowed and "denied as a timeout" in verdict.why


async def test_a_call_given_up_withdraws_its_ask(approvals: Approvals, clock: ManualClock) -> None:
    """A call cancelled while it waits (the agent gave up) closes its request."""
    waiting = asyncio.create_task(asks(approvals, clock, terms())(CALL))
    [request] = await pending(approvals)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    closed = await approvals.get(request.id)
    assert closed.state is ApprovalState.CLOSED and closed.how == "withdrawn"


async def test_over_the_cap_is_denied_at_once(approvals: Approvals, clock: ManualClock) -> None:
    """Past the agent's cap of open asks a call is denied at once, saying why."""
    ask = asks(approvals, clock, terms(max_open=1))
    first = asyncio.create_task(ask(CALL))
    await pending(approvals)
    verdict = await ask(McpCall("coder", "srv", "echo", {"text": "2"}))
    assert not verdict.allowed and "already wait" in verdict.why
    await given_up(first)


async def test_arguments_too_long_to_show_are_denied(
    approvals: Approvals, clock: ManualClock
) -> None:
    """Arguments longer than an operator can be shown whole are denied at once."""
    call = McpCall("coder", "srv", "echo", {"text": "x" * 9000})
    verdict = await asks(approvals, clock, terms())(call)
    assert not verdict.allowed and "split it" in verdict.why


async def test_a_call_before_its_run_is_written_waits_for_it(
    approvals: Approvals, clock: ManualClock
) -> None:
    """An agent that calls before its launch's run reaches the ledger (one on an SSH host)
    is judged by that run's terms once it is there, not refused for having none."""
    looked: list[str] = []

    async def late(agent: str) -> AskTerms | None:
        looked.append(agent)
        return terms(rules=("mcp__srv__echo",)) if len(looked) >= 3 else None

    verdict = await McpAsks(approvals, late, clock, settle_seconds=5)(CALL)
    assert verdict.allowed and len(looked) == 3


async def test_an_agent_with_no_run_is_refused(approvals: Approvals, clock: ManualClock) -> None:
    """A call of an agent with no run in progress is refused, with nothing asked."""
    verdict = await asks(approvals, clock, None)(CALL)
    assert not verdict.allowed and "no run in progress" in verdict.why


def test_arguments_are_shown_as_they_are() -> None:
    """Arguments are indented JSON, characters kept as sent (chat reveals hidden ones)."""
    shown = shown_arguments({"q": "a\u202eb", "n": [1]})
    assert json.loads(shown) == {"q": "a\u202eb", "n": [1]} and "\u202e" in shown


async def test_the_ledgers_terms_carry_the_agents_mode_and_rules(
    ledger: Ledger, tmp_path: Path
) -> None:
    """The app's terms (read from the ledger) give the door's ask the agent's run, mode,
    rules, timeout and cap."""
    spec = AgentSpec(
        name=AgentName("coder"),
        runtime="claude",
        permissions=PermissionMode.READ_ONLY,
        allow=("mcp__srv",),
        deny=("mcp__srv__delete",),
        approval_timeout=90.0,
        max_open_approvals=2,
    )
    await ledger.agents.upsert_agent(spec, DesiredState.RUNNING, origin="spawn")
    handle = RunHandle("subprocess", 4242, 4242, tmp_path / "coder", tmp_path / "coder" / "log")
    run = await ledger.runs.start_run("coder", handle)
    found = await ledger_terms(ledger.agents, ledger.runs)("coder")
    assert found is not None
    assert (found.run_id, found.mode, found.rules, found.deny) == (
        run.id,
        PermissionMode.READ_ONLY,
        ("mcp__srv",),
        ("mcp__srv__delete",),
    )
    assert (found.wait_seconds, found.max_open) == (90.0, 2)
    assert ruled(CALL, found) == Verdict(True, "matches the rule mcp__srv")


async def test_start_closes_the_asks_left_by_a_restart(
    approvals: Approvals, clock: ManualClock
) -> None:
    """Asks of the door's channel still open from before a restart are closed at start (no
    call waits on them any more); other channels' asks are left alone."""
    left = await approvals.open(
        agent="coder",
        run_id=7,
        channel=CHANNEL,
        ask=Ask("mcp-old", "mcp__srv__echo", "{}", pattern="mcp__srv__echo"),
        wait_seconds=60,
        max_open=3,
        starter=None,
    )
    other = await approvals.open(
        agent="coder",
        run_id=7,
        channel="test",
        ask=Ask("toolu_1", "Bash", "make"),
        wait_seconds=60,
        max_open=3,
        starter=None,
    )
    await asks(approvals, clock, terms()).start()
    closed = await approvals.get(left.id)
    assert closed.state is ApprovalState.CLOSED and "restarted" in (closed.reason or "")
    assert (await approvals.get(other.id)).state is ApprovalState.OPEN


READ = McpCall("coder", "srv", "note://today", {}, "resources/read")
PROMPT = McpCall("coder", "srv", "greet", {"name": "Ana"}, "prompts/get")


@pytest.mark.parametrize("mode", list(PermissionMode))
async def test_a_read_passes_in_every_mode_unasked(
    approvals: Approvals, clock: ManualClock, mode: PermissionMode
) -> None:
    """A resource's read or a prompt's get passes in every mode, read-only and ask included,
    as a file's read does, and is never asked in chat; a deny rule of one tool leaves it."""
    ask = asks(approvals, clock, terms(mode, deny=("mcp__srv__echo", "mcp__srv2")))
    for call in (READ, PROMPT):
        verdict = await ask(call)
        assert verdict.allowed, verdict
    assert await approvals.pending() == []


@pytest.mark.parametrize("rule", ["mcp__srv", "mcp__srv__*"])
async def test_a_deny_rule_of_the_whole_server_refuses_its_reads(
    approvals: Approvals, clock: ManualClock, rule: str
) -> None:
    """A deny rule naming the whole server refuses its reads too, in every mode, naming it."""
    verdict = await asks(approvals, clock, terms(PermissionMode.FULL, deny=(rule,)))(READ)
    assert not verdict.allowed and verdict.why == f"refused by the rule {rule}"


async def test_a_read_of_an_agent_with_no_run_is_refused(
    approvals: Approvals, clock: ManualClock
) -> None:
    """A read of an agent with no run in progress is refused, as a tool's call is."""
    verdict = await asks(approvals, clock, None)(READ)
    assert not verdict.allowed and "no run in progress" in verdict.why
