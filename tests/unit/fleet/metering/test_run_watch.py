"""Runs' caps kept in step with the ledger and the fleet's events, and what the ledger
knows of past runs' spend (migration 16)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from fleet.budgets.runs.caps import RunCaps
from fleet.budgets.runs.watch import RunCapWatch
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger
from fleet.ledger.stores.running.runs import RunStart
from fleet.metering.counting.events import Outcome, Tokens, UsageEvent
from fleet.metering.policy import Estimate, Refuse, RequestInfo
from fleet.model import AgentSpec, AgentState, DesiredState, ExitInfo, RunBudget, RunHandle
from fleet.names import AgentName
from fleet.notices import Delivery, Notice
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0

AGENT = AgentName("coder-1")
SPEC = AgentSpec(AGENT, "claude", model="m-1", run_budget=RunBudget(max_tokens=50_000))


class Board:
    def __init__(self) -> None:
        self.posted: list[Notice] = []

    async def post(self, notice: Notice) -> Delivery:
        self.posted.append(notice)
        return Delivery()


def handle(tmp_path: Path) -> RunHandle:
    return RunHandle("subprocess", 4242, 4242, tmp_path / "run", tmp_path / "log")


def used(at_seconds: float, tokens: int, cost: float | None) -> UsageEvent:
    return UsageEvent(
        at=T0 + timedelta(seconds=at_seconds),
        agent=AGENT,
        provider="anthropic",
        api="anthropic",
        requested_model="m-1",
        served_model="m-1",
        tokens=Tokens(input=tokens - tokens // 4, output=tokens // 4),
        stream=True,
        status=200,
        outcome=Outcome.OK,
        latency_ms=1.0,
        ttfb_ms=1.0,
        request_id=None,
        cost_usd=cost,
        priced=cost is not None,
    )


async def run_of(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, spec: AgentSpec, *, seconds: float
) -> int:
    """A run of ``spec`` that starts now and lasts ``seconds`` (left open at 0)."""
    await ledger.agents.upsert_agent(spec, DesiredState.RUNNING)
    run = await ledger.runs.start_run(spec.name, handle(tmp_path))
    start = RunStart("spawned by test", (), None, None, 0, spec.runtime, spec.model)
    await ledger.runs.record_run_start(run, start)
    if seconds:
        clock.advance(seconds)
        await ledger.runs.end_run(run.id, ExitInfo(0, "exited"))
    return run.id


def ask(caps: RunCaps, at_seconds: float) -> object:
    info = RequestInfo(
        AGENT, "anthropic", "anthropic", "m-1", True, T0 + timedelta(seconds=at_seconds)
    )
    return caps.claim(info, Estimate(100))


async def test_past_runs_spend_is_summed_per_run_on_the_same_runtime_and_model(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Each finished run's usage while it ran, newest first; other runtimes, other models
    and the run still going are left out."""
    await run_of(ledger, clock, tmp_path, SPEC, seconds=100)  # T0 .. T0+100
    await run_of(ledger, clock, tmp_path, SPEC, seconds=100)  # T0+100 .. T0+200
    await run_of(ledger, clock, tmp_path, replace(SPEC, model="m-2"), seconds=100)
    await run_of(ledger, clock, tmp_path, replace(SPEC, runtime="codex"), seconds=100)
    await run_of(ledger, clock, tmp_path, SPEC, seconds=0)  # open, from T0+400
    await ledger.metering.record_metering(
        [
            used(10, 1000, 0.01),
            used(20, 2000, None),
            used(150, 8000, 0.08),
            used(250, 5000, 0.05),
            used(350, 5000, 0.05),
            used(450, 7000, 0.07),
        ],
        [],
    )
    assert await ledger.runs.run_costs(AGENT, "claude", "m-1") == [(8000, 0.08), (3000, 0.01)]
    assert await ledger.runs.run_costs(AGENT, "claude", "m-2") == [(5000, 0.05)]
    assert await ledger.runs.run_costs(AGENT, "claude", None) == []
    tokens, usd = await ledger.runs.spent_since(AGENT, T0 + timedelta(seconds=400))
    assert (tokens, round(usd, 4)) == (7000, 0.07)


async def test_restore_arms_open_runs_with_what_they_spent_and_launches_arm_and_end(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """After a restart a run still open is armed with the ledger's usage since it began; a
    launch is armed with its spec's cap, an ended run disarmed; the cap is posted once, as
    an alert in the agent's thread."""
    open_run = await run_of(ledger, clock, tmp_path, SPEC, seconds=0)
    await ledger.metering.record_metering([used(5, 49_000, None)], [])
    board = Board()
    watch = RunCapWatch(RunCaps(), ledger.agents, ledger.runs, board, clock)
    await watch.restore()
    assert watch.caps.cap_of(AGENT) == (RunBudget(max_tokens=50_000), 49_000.0, 0.0)

    await watch.on_fleet_event(
        FleetEvent(AGENT, EventKind.ENDED, AgentState.RUNNING, "", False, open_run)
    )
    assert watch.caps.cap_of(AGENT) is None
    await ledger.runs.end_run(open_run, ExitInfo(0, "exited"))
    clock.advance(60)
    launched = replace(SPEC, run_budget=RunBudget(10, since=clock.now()))
    await watch.arm(launched, continues=False)
    watch.bind(AGENT, await run_of(ledger, clock, tmp_path, launched, seconds=0))
    assert watch.caps.cap_of(AGENT) == (launched.run_budget, 0.0, 0.0)
    claim = ask(watch.caps, 70)
    watch.caps.settle(claim, 10, None)  # type: ignore[arg-type]
    assert isinstance(ask(watch.caps, 71), Refuse)
    assert isinstance(ask(watch.caps, 72), Refuse)
    await watch.drain()
    assert len(board.posted) == 1
    notice = board.posted[0]
    assert notice.agents == (AGENT,) and notice.alert and notice.tone == "error"
    assert "run capped at 10 tokens: refused" in notice.markdown


async def test_the_ledger_keeps_a_spec_s_cap_and_cutoff(ledger: Ledger) -> None:
    """The spec as launched keeps its run budget, cutoff included; none stays none."""
    capped = replace(SPEC, run_budget=RunBudget(None, 2.5, "freeze"))
    await ledger.agents.upsert_agent(capped, DesiredState.RUNNING)
    record = await ledger.agents.get_agent(AGENT)
    assert record is not None and record.spec.run_budget == RunBudget(None, 2.5, "freeze")
    await ledger.agents.upsert_agent(replace(SPEC, run_budget=None), DesiredState.RUNNING)
    record = await ledger.agents.get_agent(AGENT)
    assert record is not None and record.spec.run_budget is None
