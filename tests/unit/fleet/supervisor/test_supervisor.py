"""Tests for fleet.supervisor.fleet: the Fleet with a real ledger, real
subprocesses, the stub agent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from fleet.backends.process import SubprocessBackend
from fleet.errors import AgentNotRunning, InvalidAgentName, UnknownAgent, UnknownRuntime
from fleet.ledger import Ledger
from fleet.model import AgentSpec, AgentState, DesiredState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import Admitted, LaunchRequest, Started
from fleet.supervisor.fleet import AgentStatus, EventKind, Fleet, FleetEvent, FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores

WAITING = "stub: waiting for input (send 'exit' to quit)"


@dataclass
class Rig:
    """One ledger in tmp_path, and every Fleet (each with its own backend) made on it."""

    ledger: Ledger
    settings: FleetSettings
    backends: list[SubprocessBackend] = field(default_factory=list)
    fleets: list[Fleet] = field(default_factory=list)
    events: list[FleetEvent] = field(default_factory=list)

    async def fleet(self, roster: Mapping[AgentName, AgentSpec] | None = None) -> Fleet:
        """A started Fleet with a fresh backend, as a newly started Fleetwarden would have."""
        backend = SubprocessBackend()
        fleet = real_fleet(
            stores=fleet_stores(self.ledger),
            roster=roster,
            clock=SystemClock(),
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={"subprocess": backend},
                settings=self.settings,
                environ=os.environ,
            ),
        )
        self.backends.append(backend)
        self.fleets.append(fleet)

        async def record(event: FleetEvent) -> None:
            self.events.append(event)

        fleet.subscribe(record)
        await fleet.start()
        return fleet

    async def cleanup(self) -> None:
        """Stop watching, kill every agent still running, and reap it in every backend."""
        for fleet in self.fleets:
            await fleet.stop()
        runs = {run.id: run for run in await self.ledger.runs.open_runs()}
        for record in await self.ledger.agents.list_agents():
            last = await self.ledger.runs.last_run(record.name)
            if last is not None:
                runs[last.id] = last
        for run in runs.values():
            if any(backend.is_alive(run.handle) for backend in self.backends):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.handle.pgid, signal.SIGKILL)
            for backend in self.backends:  # the backend that started it reaps the shim
                async with asyncio.timeout(10):
                    await backend.wait(run.handle)


@pytest.fixture
async def supervisor_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    # reply_quiet below the 0.3 s default keeps the suite quick; the stub answers within ~30 ms.
    settings = FleetSettings(state_dir=tmp_path, stop_grace=2.0, reply_wait=1.0, reply_quiet=0.15)
    made = Rig(ledger, settings)
    try:
        yield made
    finally:
        try:
            await made.cleanup()
        finally:
            await ledger.close()


@pytest.fixture
async def supervisor_fleet(supervisor_rig: Rig) -> Fleet:
    return await supervisor_rig.fleet()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail if it does not within ``within`` seconds."""
    async with asyncio.timeout(within):
        # Polling on purpose: the state lives in the ledger and in other processes.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def state_is(ledger: Ledger, name: str, state: AgentState) -> bool:
    record = await ledger.agents.get_agent(name)
    return record is not None and record.state is state


async def test_spawn_starts_the_agent_and_says_its_pid(
    supervisor_fleet: Fleet, supervisor_rig: Rig
) -> None:
    """spawn launches a process, records it running, and returns its pid even when the
    status is read after its first moments."""
    outcome = await supervisor_fleet.spawn(LaunchRequest("coder-1", prompt="count to 2"))
    assert outcome.started
    assert outcome.status.state is AgentState.RUNNING
    assert outcome.status.runtime == "stub"
    run = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert run is not None and run.ended_at is None
    assert outcome.status.pid == run.handle.pid
    assert supervisor_rig.backends[0].is_alive(run.handle)
    assert outcome.pid == run.handle.pid
    assert outcome.ended is None  # still running after its first moments
    report = await supervisor_rig.ledger.runs.run_report(run.id)
    assert report is not None and report.start is not None
    assert report.start.trigger == "spawned by operator"


async def test_spawn_emits_a_started_event(supervisor_fleet: Fleet, supervisor_rig: Rig) -> None:
    """A subscriber hears that the agent started."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    assert [(e.agent, e.kind, e.state) for e in supervisor_rig.events] == [
        ("coder-1", EventKind.STARTED, AgentState.RUNNING)
    ]


async def test_spawning_a_running_agent_starts_nothing(
    supervisor_fleet: Fleet, supervisor_rig: Rig
) -> None:
    """A second spawn of a live agent reports started=False with the same pid and run."""
    first = await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    first_run = await supervisor_rig.ledger.runs.last_run("coder-1")
    second = await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    assert not second.started
    assert second.pid is None
    assert second.status.pid == first.status.pid
    assert second.status.state is AgentState.RUNNING
    assert await supervisor_rig.ledger.runs.last_run("coder-1") == first_run


async def test_concurrent_spawns_start_one_process(
    supervisor_fleet: Fleet, supervisor_rig: Rig
) -> None:
    """Two spawns of the same agent at once start exactly one process."""
    a, b = await asyncio.gather(
        supervisor_fleet.spawn(LaunchRequest("coder-1")),
        supervisor_fleet.spawn(LaunchRequest("coder-1")),
    )
    assert sorted([a.started, b.started]) == [False, True]
    assert a.status.pid == b.status.pid
    assert len(await supervisor_rig.ledger.runs.open_runs()) == 1


async def wrote(fleet: Fleet, name: str, line: str) -> None:
    async def seen() -> bool:
        return line in await fleet.logs(name, 20)

    await eventually(seen)


async def test_send_delivers_the_text_to_the_agent(supervisor_fleet: Fleet) -> None:
    """send types one line into an agent that reads its input; it answers in its log."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    assert await supervisor_fleet.send("coder-1", "hello there") is None  # no new run
    await wrote(supervisor_fleet, "coder-1", "stub: received: hello there")


async def test_send_to_a_stopped_agent_says_to_spawn_it_first(supervisor_fleet: Fleet) -> None:
    """Sending to an agent that is not running raises AgentNotRunning telling to spawn it."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    await supervisor_fleet.stop_agent("coder-1")
    with pytest.raises(AgentNotRunning, match="coder-1 is stopped, not running — spawn it first"):
        await supervisor_fleet.send("coder-1", "hello")


async def test_operations_on_an_unknown_agent_raise_unknown_agent(supervisor_fleet: Fleet) -> None:
    """send, stop, restart, status and logs of a name never spawned raise UnknownAgent."""
    for operation in (
        supervisor_fleet.send("ghost", "hi"),
        supervisor_fleet.stop_agent("ghost"),
        supervisor_fleet.restart("ghost"),
        supervisor_fleet.status("ghost"),
        supervisor_fleet.logs("ghost", 10),
    ):
        with pytest.raises(UnknownAgent, match="no agent is called 'ghost'"):
            await operation


async def test_stop_records_stopped_and_the_exit_code(
    supervisor_fleet: Fleet, supervisor_rig: Rig
) -> None:
    """stop ends the process (SIGTERM: the stub exits 0) and records STOPPED and the run's code."""
    spawned = await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    info = await supervisor_fleet.stop_agent("coder-1", by="ann")
    assert (info.exit_code, info.reason) == (0, "exited with status 0")

    record = await supervisor_rig.ledger.agents.get_agent("coder-1")
    assert record is not None
    assert record.state is AgentState.STOPPED
    assert record.desired is DesiredState.STOPPED
    assert record.state_reason == "stopped by ann (exited with status 0)"
    run = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert run is not None and run.ended_at is not None
    assert (run.exit_code, run.pid) == (0, spawned.status.pid)
    assert not supervisor_rig.backends[0].is_alive(run.handle)
    [status] = await supervisor_fleet.ps()
    assert (status.state, status.pid, status.exit_code) == (AgentState.STOPPED, None, 0)


async def test_force_stop_kills_at_once(supervisor_fleet: Fleet, supervisor_rig: Rig) -> None:
    """stop --force sends SIGKILL: the run ends killed by SIGKILL, the agent STOPPED."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    info = await supervisor_fleet.stop_agent("coder-1", force=True)
    assert (info.exit_code, info.reason) == (-9, "killed by SIGKILL")
    run = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert run is not None and run.exit_code == -9
    assert await state_is(supervisor_rig.ledger, "coder-1", AgentState.STOPPED)


async def test_stopping_a_stopped_agent_raises_agent_not_running(supervisor_fleet: Fleet) -> None:
    """A second stop raises AgentNotRunning rather than signalling anything."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    await supervisor_fleet.stop_agent("coder-1")
    with pytest.raises(AgentNotRunning, match="coder-1 is not running"):
        await supervisor_fleet.stop_agent("coder-1")


async def test_an_agent_that_fails_by_itself_is_recorded_and_announced(
    supervisor_fleet: Fleet, supervisor_rig: Rig
) -> None:
    """An agent exiting non-zero on its own ends FAILED with its code, and subscribers hear it."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    await supervisor_fleet.send("coder-1", "fail 3")
    await wrote(supervisor_fleet, "coder-1", "stub: failing with status 3")

    await eventually(lambda: state_is(supervisor_rig.ledger, "coder-1", AgentState.FAILED))
    run = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert run is not None and run.ended_at is not None
    assert (run.exit_code, run.reason) == (3, "exited with status 3")
    record = await supervisor_rig.ledger.agents.get_agent("coder-1")
    # What follows an end is the restart policy's call: desired is left as it was.
    assert record is not None and record.desired is DesiredState.RUNNING

    async def ended_event_seen() -> bool:
        return any(e.kind is EventKind.ENDED for e in supervisor_rig.events)

    await eventually(ended_event_seen)
    ended = supervisor_rig.events[-1]
    assert (ended.agent, ended.kind, ended.state) == ("coder-1", EventKind.ENDED, AgentState.FAILED)
    assert ended.message == "exited with status 3"
    assert not ended.by_operator


async def test_an_agent_that_exits_cleanly_by_itself_ends_exited(
    supervisor_fleet: Fleet, supervisor_rig: Rig
) -> None:
    """An agent exiting with status 0 on its own ends EXITED, not FAILED or STOPPED."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    await supervisor_fleet.send("coder-1", "exit")
    await eventually(lambda: state_is(supervisor_rig.ledger, "coder-1", AgentState.EXITED))
    run = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert run is not None and run.exit_code == 0


async def test_an_operator_stop_is_announced_as_by_operator_not_as_a_failure(
    supervisor_fleet: Fleet, supervisor_rig: Rig
) -> None:
    """When an operator stops an agent no 'ended' event claims it failed by itself."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    await supervisor_fleet.stop_agent("coder-1")
    assert all(e.by_operator for e in supervisor_rig.events)
    assert not any(e.state is AgentState.FAILED for e in supervisor_rig.events)


def restarted_status(admitted: Admitted) -> AgentStatus:
    """What a restart the admission started says of the agent."""
    assert isinstance(admitted, Started), admitted
    return admitted.outcome.status


async def test_restart_runs_a_new_process_with_the_same_spec(
    supervisor_fleet: Fleet, supervisor_rig: Rig
) -> None:
    """restart stops the old process and starts a new one, with a new pid, same model."""
    first = await supervisor_fleet.spawn(LaunchRequest("coder-1", model="opus"))
    old_run = await supervisor_rig.ledger.runs.last_run("coder-1")
    status = restarted_status(await supervisor_fleet.restart("coder-1"))

    assert status.state is AgentState.RUNNING
    assert status.pid is not None and status.pid != first.status.pid
    assert status.model == "opus"
    assert old_run is not None
    assert not supervisor_rig.backends[0].is_alive(old_run.handle)
    new_run = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert new_run is not None and new_run.id != old_run.id and new_run.ended_at is None


async def test_restart_of_a_stopped_agent_starts_it(supervisor_fleet: Fleet) -> None:
    """restart of an agent that is not running simply starts it again."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    await supervisor_fleet.stop_agent("coder-1")
    status = restarted_status(await supervisor_fleet.restart("coder-1"))
    assert status.state is AgentState.RUNNING
    assert status.pid is not None


async def test_a_restart_racing_a_spawn_leaves_one_process(
    supervisor_fleet: Fleet, supervisor_rig: Rig
) -> None:
    """A restart that waited for a concurrent spawn stops that spawn's process: never two."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    await supervisor_fleet.stop_agent("coder-1")
    spawned, admitted = await asyncio.gather(
        supervisor_fleet.spawn(LaunchRequest("coder-1")), supervisor_fleet.restart("coder-1")
    )
    restarted = restarted_status(admitted)
    assert spawned.started
    assert restarted.pid != spawned.pid  # the pid the spawn launched, stopped by the restart
    [open_run] = await supervisor_rig.ledger.runs.open_runs()
    assert open_run.pid == restarted.pid


async def test_logs_returns_the_agents_output(supervisor_fleet: Fleet) -> None:
    """logs returns the last lines the agent wrote, newest last."""
    await supervisor_fleet.spawn(LaunchRequest("coder-1"))
    await supervisor_fleet.send("coder-1", "one")
    await wrote(supervisor_fleet, "coder-1", "stub: received: one")
    assert (await supervisor_fleet.logs("coder-1", 1)) == ["stub: received: one"]


async def test_a_new_fleet_reattaches_agents_that_kept_running(supervisor_rig: Rig) -> None:
    """Agents outlive a stopped Fleet; the next Fleet sees the same pid running and can stop it."""
    first = await supervisor_rig.fleet()
    spawned = await first.spawn(LaunchRequest("coder-1"))
    await first.stop()

    second = await supervisor_rig.fleet()
    [status] = await second.ps()
    assert (status.name, status.state, status.pid) == (
        "coder-1",
        AgentState.RUNNING,
        spawned.status.pid,
    )
    await second.send("coder-1", "still there?")
    await wrote(second, "coder-1", "stub: received: still there?")
    info = await second.stop_agent("coder-1")
    assert info.exit_code == 0
    run = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert run is not None and run.exit_code == 0
    assert await state_is(supervisor_rig.ledger, "coder-1", AgentState.STOPPED)


async def test_a_new_fleet_closes_runs_that_ended_unwatched_with_the_shims_status(
    supervisor_rig: Rig,
) -> None:
    """An agent that exited while no Fleet watched is closed with the status the shim recorded."""
    first = await supervisor_rig.fleet()
    await first.spawn(LaunchRequest("coder-1"))
    await first.stop()
    run = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert run is not None
    await supervisor_rig.backends[0].send_input(run.handle, "fail 4")
    await supervisor_rig.backends[0].wait(
        run.handle
    )  # the old Fleetwarden's process reaps its child

    await supervisor_rig.fleet()
    ended = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert ended is not None and ended.ended_at is not None
    assert (ended.exit_code, ended.reason) == (4, "exited with status 4")
    assert await state_is(supervisor_rig.ledger, "coder-1", AgentState.FAILED)


async def test_a_new_fleet_closes_runs_killed_unwatched_as_failed_with_unknown_status(
    supervisor_rig: Rig,
) -> None:
    """A group SIGKILLed while no Fleet watched is closed FAILED with exit status unknown (None)."""
    # The shim cannot record a SIGKILL and a new Fleetwarden is not the shim's parent, so the
    # backend reports "status unknown" (agent_shim: "the status it reaped, or unknown").
    first = await supervisor_rig.fleet()
    await first.spawn(LaunchRequest("coder-1"))
    await first.stop()
    run = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert run is not None
    os.killpg(run.handle.pgid, signal.SIGKILL)
    await supervisor_rig.backends[0].wait(
        run.handle
    )  # the old Fleetwarden's process reaps its child

    second = await supervisor_rig.fleet()
    ended = await supervisor_rig.ledger.runs.last_run("coder-1")
    assert ended is not None and ended.ended_at is not None
    assert ended.exit_code is None
    assert ended.reason == "ended while Fleetwarden was not running; status unknown"
    [status] = await second.ps()
    assert (status.state, status.pid, status.exit_code) == (AgentState.FAILED, None, None)


@pytest.mark.parametrize("name", ["Coder", "1coder", "", "coder_1", "a" * 33, "coder 1"])
async def test_invalid_names_are_refused(supervisor_fleet: Fleet, name: str) -> None:
    """Names outside [a-z][a-z0-9-]{0,31} raise InvalidAgentName and create nothing."""
    with pytest.raises(InvalidAgentName):
        await supervisor_fleet.spawn(LaunchRequest(name))
    with pytest.raises(InvalidAgentName):
        await supervisor_fleet.stop_agent(name)
    assert await supervisor_fleet.ps() == []


async def test_an_unknown_runtime_is_refused(supervisor_fleet: Fleet) -> None:
    """Spawning with a runtime nobody registered raises UnknownRuntime listing the known ones."""
    with pytest.raises(
        UnknownRuntime, match="unknown runtime 'nope'; known runtimes: claude, codex, command"
    ):
        await supervisor_fleet.spawn(LaunchRequest("coder-1", runtime="nope"))
    assert await supervisor_fleet.ps() == []


async def test_fleet_start_is_one_shot(supervisor_fleet: Fleet) -> None:
    """A Fleet starts once; a second start raises."""
    with pytest.raises(RuntimeError, match="called in state running"):
        await supervisor_fleet.start()


async def test_an_ad_hoc_agent_gets_the_configs_sandbox_and_egress(supervisor_rig: Rig) -> None:
    """An agent spawned without a roster entry is confined as `defaults` say, not as the
    built-in defaults: an operator's `egress: open` holds, and locked is the default."""
    supervisor_fleet = await supervisor_rig.fleet()
    await supervisor_fleet.spawn(LaunchRequest("plain"))
    assert (await supervisor_fleet.spec(AgentName("plain"))).egress == "locked"
    supervisor_rig.settings = replace(supervisor_rig.settings, confinement=("none", "locked", ()))
    other = await supervisor_rig.fleet()
    await other.spawn(LaunchRequest("bare"))
    spec = await other.spec(AgentName("bare"))
    assert (spec.sandbox, spec.egress, spec.egress_allow) == ("none", "open", ())


async def test_a_roster_agent_never_launched_has_not_run_yet(supervisor_rig: Rig) -> None:
    """An agent the roster knows but nothing launched yet is not called a stranger (nor
    "did you mean" itself): it has not run, and `spawn` starts it."""
    name = AgentName("coder-1")
    supervisor_fleet = await supervisor_rig.fleet({name: AgentSpec(name=name, runtime="stub")})
    with pytest.raises(UnknownAgent, match="coder-1 has not run yet — `spawn coder-1` starts it"):
        await supervisor_fleet.status("coder-1")
