"""The watchdog's restart passes the one admission (origin ``watchdog``): the Fleet with a
real ledger, real stub agents and the admission's every stage, the hand-off stage over the
real tasks, runs and peers' rules. A task another agent handed on is restarted only while
that agent may still reach its worker — refused, the watchdog gives up saying why; allowed,
the stalled run is stopped and launched again as it always was, a budget that says no and
a full cap notwithstanding; held, it stays due for the next sweep."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fleet.backends.process import SubprocessBackend
from fleet.budgets.model import Groups
from fleet.caps import Caps
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask, TaskRecord
from fleet.model import AgentSpec, AgentState, DesiredState, RestartMode, RestartPolicy
from fleet.names import AgentName
from fleet.peers.handed import HandedTasks
from fleet.peers.rules import Rules
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.admission.admit import Admission, Wait
from fleet.supervisor.admission.request import Admitted, LaunchRequest, Queued
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.supervisor.launcher import Launcher
from fleet.timing.clock import SystemClock
from fleet.transcript.story import Outcome
from fleet.watchdog.verdicts import Restart
from tests.fakes.doubles.launches import an_admission, fleet_and_admission
from tests.fakes.doubles.stores import fleet_stores
from tests.unit.fleet.supervisor.test_admission import Budgets

ON_FAILURE = RestartPolicy(RestartMode.ON_FAILURE, max_restarts=3)
WORKER, BOSS, OTHER = AgentName("worker"), AgentName("boss"), AgentName("other")
REASON = "stalled; restart 1 of 3"


def roster(talks_to: tuple[AgentName, ...]) -> dict[AgentName, AgentSpec]:
    """``worker`` restarted on failure; ``boss``, who handed it its task, reaching ``talks_to``."""
    return {
        WORKER: AgentSpec(WORKER, "stub", backend="subprocess", restart=ON_FAILURE),
        BOSS: AgentSpec(BOSS, "stub", backend="subprocess", talks_to=talks_to),
    }


class Holding(Admission):
    """An admission that holds every launch: it waits, launching nothing."""

    async def admit(
        self, request: LaunchRequest, wait: Wait | None = None, turn: int | None = None
    ) -> Admitted:
        return Queued("held for this test")


@dataclass
class Rig:
    """One ledger in tmp_path, the Fleet made on it, and what its fleet told."""

    ledger: Ledger
    settings: FleetSettings
    budgets: Budgets = field(default_factory=lambda: Budgets(False))  # every budget says no
    backend: SubprocessBackend = field(default_factory=SubprocessBackend)
    told: list[FleetEvent] = field(default_factory=list)
    fleets: list[Fleet] = field(default_factory=list)
    holding: bool = False  # the admission holds every launch (as a stage that queues would)

    def admission(self, launcher: Launcher) -> Admission:
        """Every stage over its real part: the caps at one running agent, the budgets all
        saying no, the hand-off over the ledger's runs and tasks and the roster's rights."""
        slots = Slots(
            agents=self.ledger.agents,
            spawn_queue=self.ledger.spawn_queue,
            fleet=launcher,
            caps=Caps(max_running=1),
            groups=Groups(),
            accounts=None,
            default_runtime="stub",
        )
        rules = Rules(
            messages=self.ledger.messages,
            fleet=launcher,
            clock=SystemClock(),
            max_chars=4000,
            queue=10,
        )
        handed = HandedTasks(runs=self.ledger.runs, tasks=self.ledger.tasks, rules=rules)
        made = an_admission(launcher, slots=slots, budgets=self.budgets, handed=handed)
        return Holding(fleet=launcher, stages=made.stages) if self.holding else made

    async def fleet(self, agents: Mapping[AgentName, AgentSpec]) -> Fleet:
        """A started Fleet over :meth:`admission`, its events kept in :attr:`told`."""
        fleet, _ = fleet_and_admission(
            stores=fleet_stores(self.ledger),
            clock=SystemClock(),
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={"subprocess": self.backend},
                settings=self.settings,
                environ=os.environ,
            ),
            admission=self.admission,
            roster=agents,
        )
        self.fleets.append(fleet)

        async def hear(event: FleetEvent) -> None:
            self.told.append(event)

        fleet.subscribe(hear)
        await fleet.start()
        return fleet

    async def handed_on(self, fleet: Fleet) -> TaskRecord:
        """``worker`` runs boss's task #1 (its run bound to it, as the register binds it)."""
        task = await self.ledger.tasks.add_task(
            NewTask("fix the login", "task", asked_by="agent boss", agent=WORKER), NO_PROJECTION
        )
        await fleet.spawn(LaunchRequest(WORKER, collect=False))
        run = await self.ledger.runs.last_run(WORKER)
        assert run is not None
        await self.ledger.tasks.add_run(task.id, run.id)
        return task

    async def cleanup(self) -> None:
        """Stop watching, kill every agent still running, and reap it."""
        for fleet in self.fleets:
            await fleet.stop()
        for run in await self.ledger.runs.open_runs():
            if self.backend.is_alive(run.handle):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.handle.pgid, signal.SIGKILL)
                await self.backend.wait(run.handle)


@pytest.fixture
async def admission_rig(ledger: Ledger, tmp_path: Path) -> AsyncIterator[Rig]:
    made = Rig(ledger, FleetSettings(state_dir=tmp_path, stop_grace=2.0, reply_wait=0.5))
    yield made
    await made.cleanup()


async def occupy(ledger: Ledger, name: AgentName) -> None:
    """``name`` runs: the one slot of ``max_running: 1`` is taken."""
    await ledger.agents.upsert_agent(AgentSpec(name, "stub"), DesiredState.RUNNING)
    await ledger.agents.set_state(name, AgentState.RUNNING, "test")


async def test_a_restart_of_a_task_whose_sender_lost_the_right_gives_up_saying_why(
    admission_rig: Rig,
) -> None:
    """boss no longer names worker in its ``talks_to``: the admission's hand-off stage
    refuses worker's restart, and the watchdog gives up on it in those words — the run it
    had left as it was, no new one launched, the agent no longer wanted running."""
    fleet = await admission_rig.fleet(roster(talks_to=()))
    task = await admission_rig.handed_on(fleet)
    before = await admission_rig.ledger.runs.last_run(WORKER)
    await fleet.apply_watchdog([Restart(WORKER, 1, REASON)])
    [gave_up] = [e for e in admission_rig.told if e.kind is EventKind.GAVE_UP]
    assert gave_up.agent == WORKER
    assert gave_up.message == (
        f"its restart is refused: task #{task.id} {task.name} was handed on by boss, "
        "and worker is no longer one of boss's peers"
    )
    assert not [e for e in admission_rig.told if e.kind is EventKind.RESTARTED]
    after = await admission_rig.ledger.runs.last_run(WORKER)
    assert before is not None and after is not None and after.id == before.id
    assert after.ended_at is None and admission_rig.backend.is_alive(after.handle)
    record = await admission_rig.ledger.agents.get_agent(WORKER)
    assert record is not None and record.desired is DesiredState.STOPPED
    assert record.restarts_in_a_row == 0 and record.next_restart_at is None


async def test_a_restart_its_sender_may_still_reach_goes_on_whatever_the_budgets_and_caps(
    admission_rig: Rig,
) -> None:
    """boss still reaches worker: the watchdog's restart passes the admission, which asks
    no budget (every one says no here) and no cap (full here), and is carried out as it
    always was — the live run stopped as restarted, the restart counted, the next run
    launched for the same task, and told as restart 1 of 3."""
    fleet = await admission_rig.fleet(roster(talks_to=(WORKER,)))
    task = await admission_rig.handed_on(fleet)
    await occupy(admission_rig.ledger, OTHER)
    before = await admission_rig.ledger.runs.last_run(WORKER)
    await fleet.apply_watchdog([Restart(WORKER, 1, REASON)])
    [restarted] = [e for e in admission_rig.told if e.kind is EventKind.RESTARTED]
    assert (restarted.agent, restarted.message) == (WORKER, f"restart 1 of 3 ({REASON})")
    assert not [e for e in admission_rig.told if e.kind is EventKind.GAVE_UP]
    after = await admission_rig.ledger.runs.last_run(WORKER)
    assert before is not None and after is not None and after.id != before.id
    ended = await admission_rig.ledger.runs.run_report(before.id)
    assert ended is not None and ended.run.ended_at is not None
    assert ended.end is not None and ended.end.outcome == Outcome.RESTARTED.value
    record = await admission_rig.ledger.agents.get_agent(WORKER)
    assert record is not None and record.desired is DesiredState.RUNNING
    assert record.restarts_in_a_row == 1 and record.last_restart_at is not None
    said = [e.reason for e in await admission_rig.ledger.agents.agent_events(WORKER)]
    assert f"restart 1 by the watchdog: {REASON}" in said
    assert admission_rig.budgets.asked == []
    assert await admission_rig.ledger.tasks.task_of_run(before.id) == task.id


async def test_a_restart_the_admission_holds_stays_due_for_the_next_sweep(
    admission_rig: Rig,
) -> None:
    """A restart the admission holds (it waits, nothing launched) is neither given up on
    nor told as done: the run is left as it was and the restart stays due, so the next
    sweep asks again."""
    admission_rig.holding = True
    fleet = await admission_rig.fleet(roster(talks_to=(WORKER,)))
    await admission_rig.handed_on(fleet)
    before = await admission_rig.ledger.runs.last_run(WORKER)
    due = before.started_at if before is not None else None
    await admission_rig.ledger.agents.set_restarts(WORKER, in_a_row=0, last_at=None, next_at=due)
    await fleet.apply_watchdog([Restart(WORKER, 1, REASON)])
    assert [
        e.kind for e in admission_rig.told if e.kind in (EventKind.RESTARTED, EventKind.GAVE_UP)
    ] == []
    after = await admission_rig.ledger.runs.last_run(WORKER)
    assert before is not None and after is not None and after.id == before.id
    record = await admission_rig.ledger.agents.get_agent(WORKER)
    assert record is not None and record.desired is DesiredState.RUNNING
    assert record.next_restart_at == due and record.restarts_in_a_row == 0


async def test_an_agent_a_reload_removed_after_the_sweep_is_not_restarted_with_no_word(
    admission_rig: Rig,
) -> None:
    """A reload took worker out of the roster (boss's ``talks_to`` with it) after the sweep
    looked: the restart is skipped as before — no give-up, no notice, the agent still
    wanted running — not refused by the hand-off stage for the rights the reload took."""
    fleet = await admission_rig.fleet(roster(talks_to=(WORKER,)))
    await admission_rig.handed_on(fleet)
    await fleet.apply_roster({BOSS: AgentSpec(BOSS, "stub", backend="subprocess", talks_to=())})
    await fleet.apply_watchdog([Restart(WORKER, 1, REASON)])
    assert [
        e for e in admission_rig.told if e.kind in (EventKind.GAVE_UP, EventKind.RESTARTED)
    ] == []
    record = await admission_rig.ledger.agents.get_agent(WORKER)
    assert record is not None and record.removed_at is not None
    assert record.desired is DesiredState.RUNNING and record.restarts_in_a_row == 0


async def test_the_hand_off_stage_asks_of_the_run_the_restart_goes_on_from(
    admission_rig: Rig,
) -> None:
    """While the watchdog's restart waits for worker's lock, a run of another task starts
    under it (carol's, handed on by an agent the roster no longer has): the hand-off stage
    asks of that run, under the same lock as the launch, and the restart is refused —
    never the new run stopped and continued on a right nobody asked."""
    fleet = await admission_rig.fleet(roster(talks_to=(WORKER,)))
    await admission_rig.handed_on(fleet)  # boss's task: boss still reaches worker
    runs = fleet._runs
    async with runs.lock(WORKER):
        applying = asyncio.create_task(fleet.apply_watchdog([Restart(WORKER, 1, REASON)]))
        for _ in range(50):  # the watchdog's apply goes as far as it can meanwhile
            await asyncio.sleep(0)
        carol = await admission_rig.ledger.tasks.add_task(
            NewTask("carol's", "task", asked_by="agent carol", agent=WORKER), NO_PROJECTION
        )
        record = await runs.record(WORKER)
        await runs.stop_run(WORKER, force=True, reason="another task")
        await runs.launch(record.spec, reason="task start")
        second = await admission_rig.ledger.runs.last_run(WORKER)
        assert second is not None
        await admission_rig.ledger.tasks.add_run(carol.id, second.id)
    await applying
    [gave_up] = [e for e in admission_rig.told if e.kind is EventKind.GAVE_UP]
    assert "was handed on by carol" in gave_up.message
    assert not [e for e in admission_rig.told if e.kind is EventKind.RESTARTED]
    last = await admission_rig.ledger.runs.last_run(WORKER)
    assert last is not None and last.id == second.id and last.ended_at is None


async def test_a_watchdog_launch_comes_only_from_the_watchdogs_relaunch(admission_rig: Rig) -> None:
    """A request of origin ``watchdog`` that is not the watchdog's own (no restart, or not
    under the agent's lock) is never launched as an uncapped restart: it is an error."""
    fleet = await admission_rig.fleet(roster(talks_to=(WORKER,)))
    await fleet.spawn(LaunchRequest(WORKER, collect=False))
    before = await admission_rig.ledger.runs.last_run(WORKER)
    for request in (
        LaunchRequest(WORKER, origin="watchdog"),
        LaunchRequest(WORKER, origin="watchdog", restart=Restart(WORKER, 1, REASON)),
    ):
        with pytest.raises(RuntimeError, match="only by the watchdog's relaunch"):
            await fleet._admission.admit(request)
    after = await admission_rig.ledger.runs.last_run(WORKER)
    assert before is not None and after is not None and after.id == before.id
