"""Tests for a forge run's ask at its cap answered from its issue, over a real ledger, real
spend asks and the in-memory forge: a comment answers only the working run's own open ask
— never the ask of the agent's other run, nor one that timed out — and raises by at most
the offer; the status comment says why a run is paused in words of its own, never a
freeze's reason."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from fleet.approvals.service import Approvals
from fleet.approvals.spend import SpendAsks
from fleet.budgets.runs.caps import RunCaps
from fleet.budgets.runs.watch import UNANSWERED
from fleet.forge.model import EventKind
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalState
from fleet.ledger.records.forge import ForgeRunState
from fleet.ledger.stores.running.runs import RunStart
from fleet.model import DesiredState, RunHandle
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.fleet import FakeFleet
from tests.unit.chat_fakes import T0
from tests.unit.fleet.approvals.test_spend_asks import CAP, SPEC
from tests.unit.fleet.forge.runs.work_rig import AGENT, BOT, WorkRig, event


@dataclass
class Asking:
    """The agent's run 1, capped at $2.00 with ``cutoff: ask``, spent past it and asked."""

    asks: SpendAsks
    approvals: Approvals
    caps: RunCaps
    request_id: str


async def asking(rig: WorkRig, tmp_path: Path) -> Asking:
    ledger = rig.ledger
    await ledger.agents.upsert_agent(SPEC, DesiredState.RUNNING)
    handle = RunHandle("subprocess", 4242, 4242, tmp_path / "run", tmp_path / "log")
    run = await ledger.runs.start_run(AGENT, handle)
    start = RunStart("spawned by @ann:x on matrix", (), None, None, 0, "claude", "m-1")
    await ledger.runs.record_run_start(run, start)
    caps = RunCaps()
    caps.arm(AGENT, run.id, CAP, T0, (70_000.0, 2.10))
    fleet = FakeFleet(
        frozen_now={AGENT: f"run:{AGENT}"}, reasons={AGENT: "paused at its cap, asking"}
    )
    approvals = Approvals(ledger.approvals, rig.clock)
    asks = SpendAsks(approvals, ledger.spend_asks, ledger.agents, ledger.runs, caps, fleet)
    await asks.start()
    rig.work.spend = asks
    assert await asks.ask_at_cap(AGENT, CAP, (70_000.0, 2.10))
    [request] = await approvals.pending(AGENT)
    return Asking(asks, approvals, caps, request.id)


def cap_now(ask: Asking) -> float | None:
    capped = ask.caps.cap_of(AGENT)
    assert capped is not None
    return capped[0].max_usd


def said_on_issue(rig: WorkRig) -> str:
    return "\n".join(c.comment.body for c in rig.api.posted.values() if c.number == 3)


async def test_a_queued_issues_comment_never_answers_the_agents_other_run(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """The agent's chat run asks at its cap while issue #3 waits its turn: `@bot raise
    +$1` on #3 answers nothing — no cap raised, the ask still open, no "Raised" said."""
    rig = WorkRig.make(ledger, clock)
    ask = await asking(rig, tmp_path)
    rig.launcher.busy_why[AGENT] = f"{AGENT} is running on other work"
    await rig.deliver(event(EventKind.LABELED, 3, label="fleetwarden:coder"))
    assert ForgeRunState((await rig.run(3)).state) is ForgeRunState.QUEUED
    outcome = await rig.deliver(event(EventKind.COMMENT, 3, body=f"@{BOT} raise +$1"))
    assert not outcome.startswith("raise"), outcome
    assert cap_now(ask) == 2.0
    assert (await ask.approvals.get(ask.request_id)).state is ApprovalState.OPEN
    assert "Raised" not in said_on_issue(rig)


async def test_a_working_runs_comment_answers_only_its_own_runs_ask(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """The forge run works as run 100 while run 1 of the agent asks: its status comment
    does not say it asks, and its comment's `raise` is the agent's to read, raising
    nothing."""
    rig = WorkRig.make(ledger, clock)
    ask = await asking(rig, tmp_path)
    record = await rig.started()
    assert record.run_id != 1
    await rig.work.publisher.refresh(record.id)
    assert "asking for more" not in rig.status(await rig.record(record.id)).comment.body
    outcome = await rig.deliver(event(EventKind.COMMENT, 3, body=f"@{BOT} raise"))
    assert not outcome.startswith("raise"), outcome
    assert cap_now(ask) == 2.0
    assert (await ask.approvals.get(ask.request_id)).state is ApprovalState.OPEN


async def test_a_comment_raises_by_at_most_the_offer(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """The forge run is the run that asks: `raise +$900` is refused on the issue saying
    an operator raises more in chat, the ask left open; `raise` grants the $2.00 offered."""
    rig = WorkRig.make(ledger, clock)
    rig.launcher._runs = itertools.count(1)  # the forge run is the ledger's run 1
    ask = await asking(rig, tmp_path)
    record = await rig.started()
    assert record.run_id == 1
    refused = await rig.deliver(event(EventKind.COMMENT, 3, body=f"@{BOT} raise +$900"))
    assert "at most the $2.00 offered" in refused
    assert "an operator raises more in chat" in said_on_issue(rig)
    assert cap_now(ask) == 2.0
    assert (await ask.approvals.get(ask.request_id)).state is ApprovalState.OPEN
    raised = await rig.deliver(event(EventKind.COMMENT, 3, body=f"@{BOT} raise"))
    assert "by $2.00" in raised and "to $4.00" in raised
    assert cap_now(ask) == 4.0
    assert (await ask.approvals.get(ask.request_id)).state is ApprovalState.ALLOWED


async def test_a_comment_after_the_ask_timed_out_raises_nothing(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Nobody answered in time: a later `@bot raise` lifts no cap (an operator's `raise`
    in chat still does)."""
    rig = WorkRig.make(ledger, clock)
    rig.launcher._runs = itertools.count(1)
    ask = await asking(rig, tmp_path)
    await rig.started()
    clock.advance(601)
    await ask.approvals.expire()
    outcome = await rig.deliver(event(EventKind.COMMENT, 3, body=f"@{BOT} raise"))
    assert not outcome.startswith("raise"), outcome
    assert cap_now(ask) == 2.0


async def test_the_status_comment_never_shows_a_freezes_own_reason(
    ledger: Ledger, clock: ManualClock
) -> None:
    """An operator's freeze naming their chat id and why, a budget naming its account, the
    run's own cap nobody answered: each is said in Fleetwarden's own words alone."""
    rig = WorkRig.make(ledger, clock, freezes=ledger.budgets.freezes)
    record = await rig.started()

    async def status_after(budget: str, reason: str, by: str | None = None) -> str:
        await ledger.budgets.remove_freeze(AGENT)
        await ledger.budgets.add_freeze(AGENT, budget, reason, by=by)
        await rig.work.publisher.refresh(record.id)
        return rig.status(await rig.record(record.id)).comment.body

    hand = await status_after("", "by @ops:acme.example: it leaks keys", by="@ops:acme.example")
    assert "⏸ Paused by an operator." in hand
    assert "ops:acme" not in hand and "leaks" not in hand
    budget = await status_after("account:acme-prod", "paused at account:acme-prod's limit")
    assert "⏸ Paused: the fleet's budgets do not allow more now." in budget
    assert "acme-prod" not in budget
    unanswered = await status_after(f"run:{AGENT}", UNANSWERED)
    assert "Paused at its cap: nobody answered in time" in unanswered
    assert "`raise` in chat continues it" in unanswered
