"""Removed means removed: the Fleet with a real ledger and real stub agents, a roster reload
that drops one, the watchdog's sweeps over it, and `forget`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from fleet.backends.process import SubprocessBackend
from fleet.errors import AgentStillRunning, UnknownAgent
from fleet.ledger import Ledger
from fleet.model import AgentSpec, AgentState, RestartMode, RestartPolicy
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from fleet.watchdog.decisions import sweep
from fleet.watchdog.verdicts import Action, Restart, ScheduleRestart
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.doubles.usage import metered

ALWAYS = RestartPolicy(RestartMode.ALWAYS, max_restarts=3, backoff_initial=0.05, backoff_max=0.05)
KEEP, GONE = AgentName("keep"), AgentName("gone")


def spec(name: AgentName) -> AgentSpec:
    return AgentSpec(name=name, runtime="stub", backend="subprocess", restart=ALWAYS)


BOTH = {KEEP: spec(KEEP), GONE: spec(GONE)}


@dataclass
class Rig:
    """One ledger in tmp_path, and every Fleet (each with its own backend) made on it."""

    ledger: Ledger
    settings: FleetSettings
    backends: list[SubprocessBackend] = field(default_factory=list)
    fleets: list[Fleet] = field(default_factory=list)

    async def fleet(self, roster: Mapping[AgentName, AgentSpec]) -> Fleet:
        """A started Fleet with ``roster``, as a newly started Fleetwarden would have."""
        backend = SubprocessBackend()
        fleet = real_fleet(
            stores=fleet_stores(self.ledger),
            clock=SystemClock(),
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={"subprocess": backend},
                settings=self.settings,
                environ=os.environ,
            ),
            roster=roster,
        )
        self.backends.append(backend)
        self.fleets.append(fleet)
        await fleet.start()
        return fleet

    async def cleanup(self) -> None:
        """Stop watching, kill every agent still running, and reap it in every backend."""
        for fleet in self.fleets:
            await fleet.stop()
        for run in await self.ledger.runs.open_runs():
            if any(backend.is_alive(run.handle) for backend in self.backends):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.handle.pgid, signal.SIGKILL)
            for backend in self.backends:
                async with asyncio.timeout(10):
                    await backend.wait(run.handle)


@pytest.fixture
async def roster_removal_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    settings = FleetSettings(state_dir=tmp_path, stop_grace=2.0, reply_wait=0.5, reply_quiet=0.1)
    made = Rig(ledger, settings)
    try:
        yield made
    finally:
        try:
            await made.cleanup()
        finally:
            await ledger.close()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail if it does not within ``within`` seconds."""
    async with asyncio.timeout(within):
        # Polling on purpose: the state lives in the ledger and in other processes.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def state_of(fleet: Fleet, name: str) -> AgentState:
    return (await fleet.status(name)).state


async def state_is(fleet: Fleet, name: str, state: AgentState) -> bool:
    return await state_of(fleet, name) is state


async def watchdog(fleet: Fleet) -> list[Action]:
    """One sweep, as the watchdog job does it: snapshot, decide, apply."""
    snapshot = await fleet.watchdog_snapshot()
    actions = sweep(snapshot.views, snapshot.now, snapshot.defaults)
    await fleet.apply_watchdog(actions)
    return actions


async def run_id(rig: Rig, name: str) -> int | None:
    run = await rig.ledger.runs.last_run(name)
    return None if run is None else run.id


async def test_a_reload_that_drops_a_running_agent_leaves_it_running_marked(
    roster_removal_rig: Rig,
) -> None:
    """The dropped agent keeps running, `ps` marks it removed, and the diff says it runs on."""
    fleet = await roster_removal_rig.fleet(BOTH)
    await fleet.spawn(LaunchRequest(GONE, collect=False))
    diff = await fleet.apply_roster({KEEP: spec(KEEP)})
    assert (diff.removed, diff.removed_running) == ((GONE,), (GONE,))
    [gone] = await fleet.ps()
    assert gone.state is AgentState.RUNNING and gone.removed_from_roster is not None
    run = await roster_removal_rig.ledger.runs.last_run(GONE)
    assert run is not None and roster_removal_rig.backends[0].is_alive(run.handle)


async def test_the_watchdog_restarts_a_roster_agent_but_not_a_removed_one(
    roster_removal_rig: Rig,
) -> None:
    """Both agents `restart: always` exit by themselves; the one still in the roster is
    restarted, the removed one is left exited however many sweeps follow."""
    fleet = await roster_removal_rig.fleet(BOTH)
    for name in (KEEP, GONE):
        await fleet.spawn(LaunchRequest(name, collect=False))
    await fleet.apply_roster({KEEP: spec(KEEP)})
    first_keep, first_gone = (
        await run_id(roster_removal_rig, KEEP),
        await run_id(roster_removal_rig, GONE),
    )
    for name in (KEEP, GONE):
        await fleet.send(name, "exit")
    seen: list[Action] = []

    async def keep_restarted() -> bool:
        seen.extend(await watchdog(fleet))
        return await run_id(roster_removal_rig, KEEP) != first_keep

    await eventually(keep_restarted)
    await eventually(lambda: state_is(fleet, GONE, AgentState.EXITED))
    for _ in range(3):
        await asyncio.sleep(0.06)  # past the backoff: a restart would be due by now
        seen.extend(await watchdog(fleet))
    assert not [a for a in seen if a.name == GONE and isinstance(a, Restart | ScheduleRestart)]
    assert await run_id(roster_removal_rig, GONE) == first_gone
    status = await fleet.status(GONE)
    assert status.state is AgentState.EXITED and status.removed_from_roster is not None


async def test_a_restart_decided_before_the_reload_is_not_carried_out(
    roster_removal_rig: Rig,
) -> None:
    """A Restart the sweep decided on a snapshot from before the reload launches nothing."""
    fleet = await roster_removal_rig.fleet(BOTH)
    await fleet.spawn(LaunchRequest(GONE, collect=False))
    await fleet.stop_agent(GONE)
    before = await run_id(roster_removal_rig, GONE)
    await fleet.apply_roster({KEEP: spec(KEEP)})
    await fleet.apply_watchdog([Restart(GONE, 1, "exited with exit status 0")])
    assert await run_id(roster_removal_rig, GONE) == before
    assert await state_of(fleet, GONE) is AgentState.STOPPED


async def test_an_entry_gone_while_fleetwarden_was_down_counts_as_removed_at_start(
    roster_removal_rig: Rig,
) -> None:
    """A Fleetwarden started on a config without the agent marks it removed at once."""
    first = await roster_removal_rig.fleet(BOTH)
    await first.spawn(LaunchRequest(GONE, collect=False))
    await first.stop_agent(GONE)
    await first.stop()
    second = await roster_removal_rig.fleet({KEEP: spec(KEEP)})
    [gone] = await second.ps()
    assert gone.name == GONE and gone.removed_from_roster is not None


async def test_an_agent_back_in_the_roster_is_no_longer_marked(roster_removal_rig: Rig) -> None:
    """A later reload that has the agent again undoes the removal."""
    fleet = await roster_removal_rig.fleet(BOTH)
    await fleet.spawn(LaunchRequest(GONE, collect=False))
    await fleet.apply_roster({KEEP: spec(KEEP)})
    await fleet.apply_roster(BOTH)
    assert (await fleet.status(GONE)).removed_from_roster is None


async def test_restarts_keep_the_mark_and_a_spawn_clears_it(roster_removal_rig: Rig) -> None:
    """An operator's restart of a removed agent leaves it removed; spawning it once it has
    ended makes it an ad hoc agent, whose policy the watchdog applies again."""
    fleet = await roster_removal_rig.fleet(BOTH)
    await fleet.spawn(LaunchRequest(GONE, collect=False))
    await fleet.apply_roster({KEEP: spec(KEEP)})
    await fleet.restart(GONE)
    assert (await fleet.status(GONE)).removed_from_roster is not None
    await fleet.stop_agent(GONE)
    await fleet.spawn(LaunchRequest(GONE, collect=False))
    record = await roster_removal_rig.ledger.agents.get_agent(GONE)
    assert record is not None and (record.origin, record.removed_at) == ("spawn", None)


async def test_forget_is_refused_while_the_agent_runs(roster_removal_rig: Rig) -> None:
    """A live agent cannot be forgotten: the error says to stop it first."""
    fleet = await roster_removal_rig.fleet(BOTH)
    await fleet.spawn(LaunchRequest(GONE, collect=False))
    await fleet.apply_roster({KEEP: spec(KEEP)})
    with pytest.raises(AgentStillRunning, match=r"^gone is running: `stop gone` first$"):
        await fleet.forget(GONE)
    assert [s.name for s in await fleet.ps()] == [GONE]


async def test_forget_takes_an_ended_agent_out_of_ps_and_keeps_its_runs_and_usage(
    roster_removal_rig: Rig,
) -> None:
    """A forgotten agent leaves `ps` and the watchdog's snapshot; its run and its usage stay
    in the ledger; a later spawn starts it afresh, its old run still there."""
    fleet = await roster_removal_rig.fleet(BOTH)
    await fleet.spawn(LaunchRequest(GONE, collect=False))
    await roster_removal_rig.ledger.metering.record_metering(
        [metered(GONE, SystemClock().now())], []
    )
    await fleet.apply_roster({KEEP: spec(KEEP)})
    await fleet.stop_agent(GONE)
    old_run = await run_id(roster_removal_rig, GONE)
    await fleet.forget(GONE)
    assert await fleet.ps() == []
    assert (await fleet.watchdog_snapshot()).views == ()
    assert not await fleet.knows(GONE)
    with pytest.raises(UnknownAgent):
        await fleet.status(GONE)
    since = fleet.window_start("today") - timedelta(days=1)
    assert [total.agent for total in await fleet.usage(since)] == [GONE]
    assert await run_id(roster_removal_rig, GONE) == old_run
    outcome = await fleet.spawn(LaunchRequest(GONE, collect=False))
    assert outcome.started
    run = await roster_removal_rig.ledger.runs.last_run(GONE)
    assert old_run is not None and run is not None and run.id > old_run
    [again] = await fleet.ps()
    assert again.state is AgentState.RUNNING and again.removed_from_roster is None


async def test_a_sweeps_marks_are_carried_out_in_order_with_the_stalls_told(
    roster_removal_rig: Rig,
) -> None:
    """State marks (written together) and other actions keep their order; a stall is
    told to the listeners, and a mark for an agent nobody knows fails alone."""
    from fleet.events import EventKind, FleetEvent
    from fleet.watchdog.verdicts import MarkIdle, MarkRunning, MarkStalled, ResetRestarts

    fleet = await roster_removal_rig.fleet(BOTH)
    told: list[FleetEvent] = []

    async def listen(event: FleetEvent) -> None:
        told.append(event)

    fleet.subscribe(listen)
    for name in (KEEP, GONE):
        await fleet.spawn(LaunchRequest(name, collect=False))
    await fleet.apply_watchdog(
        [
            MarkIdle(KEEP, "waiting for input"),
            MarkStalled(GONE, "no heartbeat for 121s"),
            MarkIdle(AgentName("ghost"), "waiting"),
            ResetRestarts(KEEP, "healthy"),
            MarkRunning(KEEP, "working"),
        ]
    )
    assert await state_of(fleet, KEEP) is AgentState.RUNNING  # the later mark, after the reset
    assert await state_of(fleet, GONE) is AgentState.STALLED
    events = await roster_removal_rig.ledger.agents.agent_events(KEEP)
    assert [e.to_state for e in events[:2]] == [AgentState.RUNNING, AgentState.IDLE]
    assert [(e.agent, e.kind) for e in told if e.kind is EventKind.STALLED] == [
        (GONE, EventKind.STALLED)
    ]
