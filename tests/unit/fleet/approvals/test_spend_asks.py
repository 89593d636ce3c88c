"""Asks at a run's cap (``cutoff: ask``) over a real ledger: asked once per task and cap,
in Fleetwarden's own channel and words; a raise by a word or by the offer of its record
lifts the live cap and the agent's spec and thaws the run; a stop is recorded as cut off;
nobody answering applies the fallback; an agent's own ask can neither look like one nor
raise a cap, and no learned rule answers one."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from fleet.approvals.service import Approvals
from fleet.approvals.spend import CHANNEL, SpendAsks, SpendError
from fleet.budgets.runs.caps import RunCaps
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalState, Ask, Decision
from fleet.ledger.stores.running.runs import RunStart
from fleet.model import AgentSpec, DesiredState, RunBudget, RunHandle
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from fleet.transcript.story import Outcome
from tests.fakes.doubles.fleet import FakeFleet
from tests.unit.chat_fakes import T0

AGENT = AgentName("coder")
CAP = RunBudget(max_usd=2.0, cutoff="ask", since=T0, ask_within=600.0, then="freeze")
SPEC = AgentSpec(AGENT, "claude", model="m-1", run_budget=CAP)


@dataclass
class Rig:
    asks: SpendAsks
    approvals: Approvals
    caps: RunCaps
    fleet: FakeFleet
    ledger: Ledger
    run_id: int


@pytest.fixture
async def spend_asks_rig(ledger: Ledger, clock: ManualClock, tmp_path: Path) -> Rig:
    """coder's run, capped at $2.00 with `cutoff: ask`, has spent $2.10 and is frozen."""
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
    approvals = Approvals(ledger.approvals, clock)
    asks = SpendAsks(approvals, ledger.spend_asks, ledger.agents, ledger.runs, caps, fleet)
    await asks.start()
    return Rig(asks, approvals, caps, fleet, ledger, run.id)


async def asked(rig: Rig) -> str:
    assert await rig.asks.ask_at_cap(AGENT, CAP, (70_000.0, 2.10))
    [request] = await rig.approvals.pending(AGENT)
    return request.id


async def test_a_run_at_its_cap_is_asked_once_in_its_own_words(spend_asks_rig: Rig) -> None:
    """One request on the spend channel, its words Fleetwarden's; asked again (a second
    capped request, a restart), nothing more; the record holds the offer and fallback."""
    request_id = await asked(spend_asks_rig)
    assert await spend_asks_rig.asks.ask_at_cap(AGENT, CAP, (80_000.0, 2.40))
    [request] = await spend_asks_rig.approvals.pending(AGENT)
    assert request.id == request_id and request.channel == CHANNEL
    assert request.subject.startswith("coder reached its $2.00 cap")
    assert "`raise coder +$2` or `stop coder`" in request.detail
    assert request.starter == "@ann:x on matrix"
    record = await spend_asks_rig.ledger.spend_asks.spend_ask(request_id)
    assert record is not None
    assert (record.unit, record.cap, record.offer, record.fallback) == ("usd", 2.0, 2.0, "freeze")


async def test_raise_by_a_word_lifts_the_live_cap_and_the_spec_and_thaws(
    spend_asks_rig: Rig,
) -> None:
    """`raise coder +$3`: the live cap is $5.00 (told again there), so is the agent's spec
    (its task's start kept), the run is thawed and the ask answered by the command."""
    request_id = await asked(spend_asks_rig)
    said = await spend_asks_rig.asks.raise_cap(AGENT, "+$3", by="@ann:x on matrix")
    assert "to $5.00: it goes on" in said
    capped = spend_asks_rig.caps.cap_of(AGENT)
    assert capped is not None and capped[0].max_usd == 5.0
    record = await spend_asks_rig.ledger.agents.get_agent(AGENT)
    assert record is not None
    assert record.spec.run_budget == replace(CAP, max_usd=5.0, raised_usd=3.0)
    assert spend_asks_rig.fleet.frozen_now == {}
    request = await spend_asks_rig.approvals.get(request_id)
    assert request.state is ApprovalState.ALLOWED and request.how == "raise"
    settled = await spend_asks_rig.ledger.spend_asks.spend_ask(request_id)
    assert settled is not None and (settled.outcome, settled.amount) == ("raised", 3.0)


async def test_a_reaction_raises_by_the_offer_of_the_record_alone(spend_asks_rig: Rig) -> None:
    """✅ on the ask raises by the $2.00 its record offers, whatever its words say."""
    request_id = await asked(spend_asks_rig)
    await spend_asks_rig.approvals.answer(
        request_id, by="@ann:x", decision=Decision.ALLOW, how="reaction"
    )
    capped = spend_asks_rig.caps.cap_of(AGENT)
    assert capped is not None and capped[0].max_usd == 4.0
    assert spend_asks_rig.fleet.frozen_now == {}


async def test_a_no_stops_the_run_as_cut_off(spend_asks_rig: Rig) -> None:
    """❌ (or `no`) stops the run, recorded as cut off; the cap stays."""
    request_id = await asked(spend_asks_rig)
    await spend_asks_rig.approvals.answer(
        request_id, by="@ann:x", decision=Decision.DENY, how="reply"
    )
    assert spend_asks_rig.fleet.stopped == [(AGENT, "@ann:x, at its run's cap", Outcome.CUT_OFF)]
    settled = await spend_asks_rig.ledger.spend_asks.spend_ask(request_id)
    assert settled is not None and settled.outcome == "stopped"


async def test_nobody_answering_leaves_it_frozen_and_raise_still_thaws(
    spend_asks_rig: Rig, clock: ManualClock
) -> None:
    """`then: freeze`: past its deadline the ask times out and the run stays frozen;
    `raise coder` later (the cap again) still lifts it and thaws the run."""
    request_id = await asked(spend_asks_rig)
    clock.advance(601)
    [ended] = await spend_asks_rig.approvals.expire()
    assert ended.state is ApprovalState.TIMED_OUT and spend_asks_rig.fleet.stopped == []
    assert AGENT in spend_asks_rig.fleet.frozen_now
    settled = await spend_asks_rig.ledger.spend_asks.spend_ask(request_id)
    assert settled is not None and settled.outcome == "frozen"
    assert spend_asks_rig.fleet.reasons[AGENT].startswith("paused at its cap, nobody answered")
    assert "by $2.00" in await spend_asks_rig.asks.raise_cap(AGENT, None, by="@ann:x on matrix")
    assert spend_asks_rig.fleet.frozen_now == {}


async def test_nobody_answering_stops_it_when_its_fallback_says_stop(
    spend_asks_rig: Rig, clock: ManualClock
) -> None:
    """`then: stop`: the timeout stops the run, recorded as cut off."""
    assert await spend_asks_rig.asks.ask_at_cap(AGENT, replace(CAP, then="stop"), (70_000.0, 2.10))
    clock.advance(601)
    await spend_asks_rig.approvals.expire()
    assert spend_asks_rig.fleet.stopped == [
        (AGENT, "nobody answered at its run's cap", Outcome.CUT_OFF)
    ]


async def test_an_agents_own_ask_can_neither_pass_for_one_nor_raise_a_cap(
    spend_asks_rig: Rig,
) -> None:
    """An ask on the agent's own channel that copies a spend ask's words, allowed, raises
    nothing; a learned rule for `spend` answers no spend ask; `stop` with no ask open is
    nobody's answer."""
    await spend_asks_rig.approvals.register("hook", lambda request: _nothing())
    forged = Ask("x1", "spend", "coder reached its $2.00 cap", "`raise coder +$2`")
    own = await spend_asks_rig.approvals.open(
        agent=AGENT, run_id=spend_asks_rig.run_id, channel="hook", ask=forged, wait_seconds=60,
        max_open=3, starter=None,
    )  # fmt: skip
    await spend_asks_rig.approvals.answer(
        own.id, by="@ann:x", decision=Decision.ALLOW, how="reaction"
    )
    capped = spend_asks_rig.caps.cap_of(AGENT)
    assert capped is not None and capped[0].max_usd == 2.0
    assert await spend_asks_rig.asks.open_ask(AGENT) is None
    await spend_asks_rig.ledger.approvals.add_approval_rule(AGENT, "spend", "@ann:x")
    request_id = await asked(spend_asks_rig)
    assert (await spend_asks_rig.approvals.get(request_id)).state is ApprovalState.OPEN
    assert not await spend_asks_rig.asks.stop_asked("other", by="@ann:x")


async def test_a_raise_that_cannot_be_read_or_has_no_run_is_refused(spend_asks_rig: Rig) -> None:
    """A raise in the wrong measure, or of an agent with no capped run, says what to do."""
    with pytest.raises(SpendError, match="not in tokens: raise it in dollars"):
        await spend_asks_rig.asks.raise_cap(AGENT, "+50k", by="@ann:x")
    with pytest.raises(SpendError, match="no amount"):
        await spend_asks_rig.asks.raise_cap(AGENT, "lots", by="@ann:x")
    with pytest.raises(SpendError, match="has no capped run going"):
        await spend_asks_rig.asks.raise_cap(AgentName("other"), "+$1", by="@ann:x")


async def _nothing() -> None:
    return None


async def test_stop_name_answers_the_open_ask_once_the_stop_succeeded(spend_asks_rig: Rig) -> None:
    """`stop coder` while it asks: the ask is answered by the command only once the stop
    went through — settled stopped, though the run's end closed it meanwhile; a stop that
    fails leaves it open and answerable."""
    request_id = await asked(spend_asks_rig)
    with pytest.raises(RuntimeError):
        async with spend_asks_rig.asks.stopping(AGENT, by="@ann:x on matrix"):
            raise RuntimeError("the stop failed")
    assert (await spend_asks_rig.approvals.get(request_id)).state is ApprovalState.OPEN
    async with spend_asks_rig.asks.stopping(AGENT, by="@ann:x on matrix"):
        await spend_asks_rig.approvals.close_run(
            spend_asks_rig.run_id, "coder ended"
        )  # the stop ends the run
    settled = await spend_asks_rig.ledger.spend_asks.spend_ask(request_id)
    assert settled is not None
    assert (settled.outcome, settled.settled_by) == ("stopped", "@ann:x on matrix")
    assert spend_asks_rig.fleet.stopped == []  # the stop itself is the command's


async def test_a_raise_from_the_forge_answers_only_an_open_ask_by_its_offer(
    spend_asks_rig: Rig, clock: ManualClock
) -> None:
    """`run_id` given (a forge comment): more than the offer, or a run whose ask is not
    the open one, is refused; once the ask timed out, nothing is raised — the race a
    comment could otherwise win against the timeout."""
    request_id = await asked(spend_asks_rig)
    with pytest.raises(SpendError, match=r"at most the \$2.00 offered"):
        await spend_asks_rig.asks.raise_cap(
            AGENT, "+$3", by="@bob on hub", run_id=spend_asks_rig.run_id
        )
    with pytest.raises(SpendError, match="no longer open"):
        await spend_asks_rig.asks.raise_cap(
            AGENT, None, by="@bob on hub", run_id=spend_asks_rig.run_id + 1
        )
    assert (await spend_asks_rig.approvals.get(request_id)).state is ApprovalState.OPEN
    clock.advance(601)
    await spend_asks_rig.approvals.expire()
    with pytest.raises(SpendError, match="no longer open"):
        await spend_asks_rig.asks.raise_cap(
            AGENT, None, by="@bob on hub", run_id=spend_asks_rig.run_id
        )
    capped = spend_asks_rig.caps.cap_of(AGENT)
    assert capped is not None and capped[0].max_usd == 2.0


async def test_raise_after_raise_offers_the_cap_the_task_began_with(spend_asks_rig: Rig) -> None:
    """The default offer is the $2.00 the task began with, not the cap again: raise after
    raise goes $2 → $4 → $6, never doubling; each raise is counted as the task's."""
    await asked(spend_asks_rig)
    assert "to $4.00" in await spend_asks_rig.asks.raise_cap(AGENT, None, by="@ann:x")
    assert "by $2.00" in await spend_asks_rig.asks.raise_cap(AGENT, None, by="@ann:x")
    capped = spend_asks_rig.caps.cap_of(AGENT)
    assert capped is not None
    assert (capped[0].max_usd, capped[0].raised_usd) == (6.0, 4.0)


async def test_an_ask_whose_run_ended_first_is_kept_as_closed(spend_asks_rig: Rig) -> None:
    """The run ended before anyone answered: its ask is closed with it, and its row says
    so — nothing is raised or stopped."""
    request_id = await asked(spend_asks_rig)
    await spend_asks_rig.approvals.close_run(spend_asks_rig.run_id, "coder ended")
    request = await spend_asks_rig.approvals.get(request_id)
    assert request.state is ApprovalState.CLOSED
    settled = await spend_asks_rig.ledger.spend_asks.spend_ask(request_id)
    assert settled is not None and settled.outcome == "closed" and settled.amount is None
    assert spend_asks_rig.fleet.stopped == [] and AGENT in spend_asks_rig.fleet.frozen_now
