"""A run's cap armed in its launch (the Fleet with a real ledger and the stub agent): a
cap that cannot be armed starts nothing and says what failed; the watchdog's restart
continues the task's cap and count; a restarted Fleetwarden reads the task's count back
from the ledger, and refuses to go on uncapped when it cannot."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pytest

from fleet.backends.process import SubprocessBackend
from fleet.budgets.runs.arming import arm_or_refuse, task_spec
from fleet.budgets.runs.caps import RunCaps, RunClaim
from fleet.budgets.runs.watch import CapCutoffs, RunCapWatch
from fleet.errors import LaunchFailed, LedgerError
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger
from fleet.metering.counting.events import Outcome, Tokens, UsageEvent
from fleet.metering.policy import Estimate, Refuse, RequestInfo
from fleet.model import AgentSpec, DesiredState, RunBudget, RunHandle
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit, RunSpend
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from fleet.watchdog.verdicts import Restart
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores

AGENT = AgentName("crashy")
CAP = RunBudget(max_tokens=3_000)


@dataclass
class Rig:
    ledger: Ledger
    settings: FleetSettings
    clock: SystemClock


@pytest.fixture
async def run_arming_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = SystemClock()
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    settings = FleetSettings(state_dir=tmp_path, stop_grace=2.0, reply_wait=1.0, reply_quiet=0.15)
    try:
        yield Rig(ledger, settings, clock)
    finally:
        await ledger.close()


def fleet_of(rig: Rig, caps: object, roster: dict[AgentName, AgentSpec] | None = None) -> Fleet:
    return real_fleet(
        stores=fleet_stores(rig.ledger),
        clock=rig.clock,
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=rig.settings,
            environ=os.environ,
            spend=RunSpend(run_caps=caps),
        ),
        roster=roster,
    )


class FailingCaps:
    """Run caps whose ledger fails as a cap is armed."""

    def __init__(self) -> None:
        self.disarmed: list[str] = []

    async def arm(self, spec: AgentSpec, *, continues: bool) -> None:
        raise LedgerError("could not read the ledger: database is locked")

    def bind(self, agent: AgentName, run_id: int) -> None:
        raise AssertionError("nothing was launched to bind")

    def disarm(self, agent: AgentName) -> None:
        self.disarmed.append(agent)


def ask(at: datetime) -> RequestInfo:
    return RequestInfo(AGENT, "anthropic", "anthropic", "m", True, at)


def spend(caps: RunCaps, at: datetime, tokens: int) -> None:
    claim = caps.claim(ask(at), Estimate(10, None, "m", 0, 1_200))
    assert isinstance(claim, RunClaim)
    caps.settle(claim, tokens, None)


def used(at: datetime, tokens: int) -> UsageEvent:
    return UsageEvent(
        at=at,
        agent=AGENT,
        provider="anthropic",
        api="anthropic",
        requested_model="m",
        served_model="m",
        tokens=Tokens(input=tokens),
        stream=True,
        status=200,
        outcome=Outcome.OK,
        latency_ms=1.0,
        ttfb_ms=1.0,
        request_id=None,
        cost_usd=None,
        priced=False,
    )


def test_a_new_task_stamps_its_cap_and_a_restart_keeps_the_stamp() -> None:
    """A launch that begins a task stamps its cap with now; one continuing a task keeps its
    start; an uncapped spec is left as it is."""
    now = datetime.fromisoformat("2026-11-25T10:00:00+00:00")
    spec = AgentSpec(AGENT, "stub", run_budget=CAP)
    stamped = task_spec(spec, now, continues=False)
    assert stamped.run_budget == replace(CAP, since=now)
    later = datetime.fromisoformat("2026-11-25T11:00:00+00:00")
    assert task_spec(stamped, later, continues=True) == stamped
    assert task_spec(stamped, later, continues=False).run_budget == replace(CAP, since=later)
    assert task_spec(AgentSpec(AGENT, "stub"), now, continues=False).run_budget is None


def test_a_raise_belongs_to_its_task() -> None:
    """A cap operators raised from 3,000 to 9,000 tokens keeps the raise while its task
    goes on (a restart); a new task begins at the 3,000 configured again."""
    now = datetime.fromisoformat("2026-11-25T10:00:00+00:00")
    raised = replace(CAP, max_tokens=9_000, raised_tokens=6_000, since=now)
    spec = AgentSpec(AGENT, "stub", run_budget=raised)
    assert task_spec(spec, now, continues=True) == spec
    later = datetime.fromisoformat("2026-11-25T11:00:00+00:00")
    assert task_spec(spec, later, continues=False).run_budget == replace(CAP, since=later)


async def test_a_cap_that_cannot_be_armed_starts_no_run_and_says_what_failed(
    run_arming_rig: Rig,
) -> None:
    """The ledger failing as the cap is armed: the spawn is refused naming the failure,
    no process is started and no run recorded — the agent never runs uncapped."""
    caps = FailingCaps()
    fleet = fleet_of(run_arming_rig, caps)
    await fleet.start()
    try:
        with pytest.raises(LaunchFailed) as refused:
            await fleet.spawn(LaunchRequest(AGENT, runtime="stub", run_budget=CAP))
        message = str(refused.value)
        assert "crashy was not started: its run's cap could not be armed" in message
        assert "LedgerError: could not read the ledger: database is locked" in message
        assert await run_arming_rig.ledger.runs.last_run(AGENT) is None
        assert caps.disarmed == [AGENT]
    finally:
        await fleet.stop()


async def test_the_watchdog_s_restart_keeps_the_spawn_s_cap_and_counts_on(
    run_arming_rig: Rig,
) -> None:
    """A roster agent without a cap spawned with one: the watchdog's restart launches it
    with that cap and its task's start, and the new run counts on from the 2,500 tokens
    the one before spent — one more request, then refused. A restarted Fleetwarden reads
    the task's 3,500 tokens from the ledger, not the new run's 1,000."""
    watch = RunCapWatch(
        RunCaps(),
        run_arming_rig.ledger.agents,
        run_arming_rig.ledger.runs,
        None,
        run_arming_rig.clock,
    )
    fleet = fleet_of(run_arming_rig, watch, roster={AGENT: AgentSpec(AGENT, "stub")})
    watch.listen(CapCutoffs(fleet, watch.caps))
    fleet.subscribe(watch.on_fleet_event)
    await fleet.start()
    try:
        await fleet.spawn(LaunchRequest(AGENT, run_budget=CAP))
        first = await run_arming_rig.ledger.runs.last_run(AGENT)
        spend(watch.caps, run_arming_rig.clock.now(), 2_500)
        await run_arming_rig.ledger.metering.record_metering(
            [used(run_arming_rig.clock.now(), 2_500)], []
        )

        await fleet.apply_watchdog([Restart(AGENT, 1, "stalled")])
        second = await run_arming_rig.ledger.runs.last_run(AGENT)
        assert first is not None and second is not None and second.id != first.id
        record = await run_arming_rig.ledger.agents.get_agent(AGENT)
        assert record is not None and record.spec.run_budget is not None
        assert record.spec.run_budget.max_tokens == 3_000
        assert record.spec.run_budget.since is not None
        assert record.spec.run_budget.since <= first.started_at
        capped = watch.caps.cap_of(AGENT)
        assert capped is not None and capped[1:] == (2_500.0, 0.0)
        spend(watch.caps, run_arming_rig.clock.now(), 1_000)
        await run_arming_rig.ledger.metering.record_metering(
            [used(run_arming_rig.clock.now(), 1_000)], []
        )
        assert isinstance(watch.caps.claim(ask(run_arming_rig.clock.now()), Estimate(10)), Refuse)

        again = RunCapWatch(
            RunCaps(),
            run_arming_rig.ledger.agents,
            run_arming_rig.ledger.runs,
            None,
            run_arming_rig.clock,
        )
        await again.restore()
        restored = again.caps.cap_of(AGENT)
        assert restored is not None and restored[1:] == (3_500.0, 0.0)
        assert isinstance(again.caps.claim(ask(run_arming_rig.clock.now()), Estimate(10)), Refuse)
    finally:
        await fleet.stop_agent(AGENT, force=True)
        await fleet.stop()


async def test_a_restart_after_fleetwarden_s_reads_the_task_s_count_or_refuses(
    run_arming_rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run continuing a task this Fleetwarden did not see begin counts on from the
    ledger's usage since the task's start; with the ledger failing, the launch is refused
    — so is a start that cannot restore the runs still going."""
    since = run_arming_rig.clock.now()
    await run_arming_rig.ledger.metering.record_metering([used(since, 2_900)], [])
    spec = AgentSpec(AGENT, "stub", run_budget=replace(CAP, since=since))
    watch = RunCapWatch(
        RunCaps(),
        run_arming_rig.ledger.agents,
        run_arming_rig.ledger.runs,
        None,
        run_arming_rig.clock,
    )
    await watch.arm(spec, continues=True)
    capped = watch.caps.cap_of(AGENT)
    assert capped is not None and capped[1:] == (2_900.0, 0.0)

    async def failing(agent: str, since: datetime) -> tuple[int, float]:
        raise LedgerError("could not read the ledger: disk I/O error")

    monkeypatch.setattr(run_arming_rig.ledger.runs, "spent_since", failing)
    fresh = RunCapWatch(
        RunCaps(),
        run_arming_rig.ledger.agents,
        run_arming_rig.ledger.runs,
        None,
        run_arming_rig.clock,
    )
    with pytest.raises(LaunchFailed, match=r"cap could not be armed.*disk I/O error"):
        await arm_or_refuse(fresh, spec, continues=True)
    assert fresh.caps.cap_of(AGENT) is None
    await fresh.arm(spec, continues=False)  # a new task reads nothing back
    await run_arming_rig.ledger.agents.upsert_agent(spec, DesiredState.RUNNING)
    run_dir = run_arming_rig.settings.state_dir / "run"
    await run_arming_rig.ledger.runs.start_run(
        AGENT, RunHandle("subprocess", 4242, 4242, run_dir, run_dir / "log")
    )
    with pytest.raises(LedgerError, match="disk I/O error"):
        await RunCapWatch(
            RunCaps(),
            run_arming_rig.ledger.agents,
            run_arming_rig.ledger.runs,
            None,
            run_arming_rig.clock,
        ).restore()


async def test_a_run_capped_during_the_fleets_start_is_cut(run_arming_rig: Rig) -> None:
    """The cutoffs listen before the fleet starts (as the app wires them): a roster agent
    whose run reaches its ``freeze`` cap while the fleet is still starting is frozen."""
    cap = RunBudget(max_tokens=3_000, cutoff="freeze")
    watch = RunCapWatch(
        RunCaps(),
        run_arming_rig.ledger.agents,
        run_arming_rig.ledger.runs,
        None,
        run_arming_rig.clock,
    )
    roster = {AGENT: AgentSpec(AGENT, "stub", autostart=True, run_budget=cap)}
    fleet = fleet_of(run_arming_rig, watch, roster=roster)
    watch.listen(CapCutoffs(fleet, watch.caps))
    fleet.subscribe(watch.on_fleet_event)
    refused: list[object] = []
    frozen = asyncio.Event()
    thawed: list[FleetEvent] = []

    async def reach_the_cap(event: FleetEvent) -> None:
        if event.kind is EventKind.STARTED and event.agent == AGENT:
            spend(watch.caps, run_arming_rig.clock.now(), 3_000)
            refused.append(watch.caps.claim(ask(run_arming_rig.clock.now()), Estimate(10)))
        if event.kind is EventKind.FROZEN and event.agent == AGENT:
            frozen.set()
        if event.kind is EventKind.THAWED:
            thawed.append(event)

    fleet.subscribe(reach_the_cap)
    await fleet.start()
    try:
        assert len(refused) == 1 and isinstance(refused[0], Refuse)  # capped in the start
        await asyncio.wait_for(frozen.wait(), 10)
        assert [f.reason for f in await fleet.frozen()] == ["its run reached its cap"]
        run = await run_arming_rig.ledger.runs.last_run(AGENT)
        assert run is not None and await fleet.thaw(AGENT)
        assert [(e.agent, e.run_id) for e in thawed] == [(AGENT, run.id)]  # told, once
        assert not await fleet.thaw(AGENT) and len(thawed) == 1  # nothing paused: no news
    finally:
        await fleet.thaw(AGENT)
        await fleet.stop_agent(AGENT, force=True)
        await fleet.stop()
