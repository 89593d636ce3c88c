"""The runs' side of the register, where the spawn queue and restarts meet it (SQLite and
PostgreSQL): a restart goes on with the task of the agent's previous run even when a newer
task of the agent waits; a launch for a task whose agent already waits in the queue leaves
it to do; a task held for a queue entry that is gone goes back to do; ending a task takes
its launches out of the queue, and a launch for an ended task is refused; a run that ended
before its start was heard still ends its task; ending a task that never ran keeps no
error; a task that ended is told to every listener of the runs, the register's among them."""

from __future__ import annotations

from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger, SpawnAsk
from fleet.ledger.records.tasks import TaskRecord
from fleet.ledger.stores.running.runs import RunEnd
from fleet.model import AgentState, ExitInfo
from fleet.names import AgentName
from fleet.supervisor.admission.held import held
from fleet.supervisor.admission.request import LaunchRequest, Queued, Refused
from fleet.tasks.register import Register
from fleet.tasks.runs import TaskRuns
from tests.unit.fleet.metering.test_run_watch import AGENT
from tests.unit.fleet.tasks.test_ledger_register import Fleet, new, run_task


async def queue_for(ledger: Ledger, task: TaskRecord) -> int:
    """A spawn-queue entry launching for ``task``; its id."""
    request = LaunchRequest(AGENT, prompt=task.title, task=task.id)
    ask = SpawnAsk(AGENT, "task start", "op", "console", "console", "a cap", launch=held(request))
    entry = await ledger.spawn_queue.enqueue_spawn(ask, host="local")
    return entry.id


async def test_a_restart_goes_on_with_the_task_of_the_previous_run(
    register: Register, fleet: Fleet
) -> None:
    working = await register.new(new("working", agent=AGENT))
    first = await run_task(register, fleet, working)
    await register.new(new("made later, not started", agent=AGENT))
    await fleet.end(AGENT, first, "stalled and restarted")
    second = await fleet.launch(AGENT)  # the watchdog's: not through the admission
    found = await register.find(str(working.id))
    assert found.runs == (first, second) and found.state == "working"


async def test_a_task_whose_agent_already_waits_in_the_queue_is_left_to_do(
    register: Register, task_runs: TaskRuns, ledger: Ledger
) -> None:
    task = await register.new(new("second", agent=AGENT))
    other = await register.new(new("first", agent=AGENT))
    entry_id = await queue_for(ledger, other)
    [queued] = await ledger.spawn_queue.queued_spawns()
    await task_runs.told(task.id, AGENT, Queued("a cap", queued, already=True))
    left = await register.find(str(task.id))
    assert left.state == "todo"
    assert left.why == (
        f"not started: {AGENT} already waits in the spawn queue (#{entry_id}: "
        f"`cancel {entry_id}` drops it)"
    )


async def test_a_task_held_for_a_queue_entry_that_is_gone_goes_back_to_do(
    register: Register, task_runs: TaskRuns, ledger: Ledger
) -> None:
    kept = await register.new(new("kept", agent=AGENT))
    gone = await register.new(new("gone", agent=AGENT))
    waits = await register.new(new("waits", agent=AGENT), after=[kept])
    await register.start(waits, LaunchRequest(AGENT), None)  # held for `kept`
    for task in (kept, gone):
        entry = await queue_for(ledger, task)
        await task_runs.told(task.id, AGENT, Queued("a cap", None))
    assert await ledger.spawn_queue.cancel_spawn(entry) is not None  # `cancel N` of gone's
    assert await task_runs.settle_queued() == 1
    assert (await register.find(str(gone.id))).state == "todo"
    assert "its place in the spawn queue is gone" in (await register.find(str(gone.id))).why
    assert (await register.find(str(kept.id))).state == "queued"
    assert (await register.find(str(waits.id))).state == "queued"


async def test_ending_a_task_takes_its_launch_out_of_the_queue_and_refuses_it(
    register: Register, task_runs: TaskRuns, ledger: Ledger, fleet: Fleet
) -> None:
    task = await register.new(new("cancel me", agent=AGENT))
    await queue_for(ledger, task)
    await task_runs.told(task.id, AGENT, Queued("a cap", None))
    ended = await register.end(task, "cancelled", "not needed")
    assert ended.state == "cancelled" and ended.error is None
    assert await ledger.spawn_queue.queued_spawns() == []
    admission = register._admission
    late = await admission.admit(LaunchRequest(AGENT, task=task.id))
    assert isinstance(late, Refused) and late.why.endswith("is cancelled: `task 1` shows it")
    assert AGENT not in fleet.running


async def test_a_run_that_ended_before_its_start_was_heard_still_ends_its_task(
    register: Register, task_runs: TaskRuns, ledger: Ledger, fleet: Fleet
) -> None:
    task = await register.new(new("quick", agent=AGENT))
    fleet.task_runs = TaskRuns(
        tasks=ledger.tasks, actuals=ledger.actuals, runs=ledger.runs, lines=ledger.lines,
        spawn_queue=ledger.spawn_queue,
    )  # fmt: skip
    run = await fleet.launch(AGENT)  # its start heard by nobody yet
    await ledger.runs.end_run(run, ExitInfo(0, "exited"))
    await ledger.runs.record_run_end(run, RunEnd("finished", "why"))
    ended = FleetEvent(AgentName(AGENT), EventKind.ENDED, AgentState.EXITED, "", False, run)
    await task_runs.hear(ended)  # before the start: no task yet
    started = FleetEvent(AgentName(AGENT), EventKind.STARTED, AgentState.RUNNING, "", True, run)
    async with task_runs.launching(AGENT, task.id):
        await task_runs.hear(started)
    assert (await register.find(str(task.id))).state == "done"


async def test_a_run_whose_end_is_still_being_written_moves_its_task_at_its_end_event(
    register: Register, task_runs: TaskRuns, ledger: Ledger, fleet: Fleet
) -> None:
    """The run is marked ended, but what it left (its branch) and its report are still being
    written when its start is heard: the task waits for the run's ENDED event, sent once
    they are, instead of being moved now as a run that left no change."""
    task = await register.new(new("quick", agent=AGENT))
    fleet.task_runs = TaskRuns(
        tasks=ledger.tasks, actuals=ledger.actuals, runs=ledger.runs, lines=ledger.lines,
        spawn_queue=ledger.spawn_queue,
    )  # fmt: skip
    run = await fleet.launch(AGENT)
    await ledger.runs.end_run(run, ExitInfo(0, "exited"))  # its end not written whole yet
    started = FleetEvent(AgentName(AGENT), EventKind.STARTED, AgentState.RUNNING, "", True, run)
    async with task_runs.launching(AGENT, task.id):
        await task_runs.hear(started)
    assert (await register.find(str(task.id))).state == "working"
    await ledger.runs.record_run_end(run, RunEnd("finished", "why"))
    ended = FleetEvent(AgentName(AGENT), EventKind.ENDED, AgentState.EXITED, "", False, run)
    await task_runs.hear(ended)
    assert (await register.find(str(task.id))).state == "done"


async def test_a_task_that_ended_is_told_to_every_listener_of_the_runs(
    register: Register, task_runs: TaskRuns, fleet: Fleet
) -> None:
    """A listener added after the register's hears the task that ended as well, and takes
    nothing from the register's: the task waiting for it is told it will not start."""
    first = await register.new(new("first", agent=AGENT))
    waits = await register.new(new("waits", agent=AGENT), after=[first])
    await register.start(waits, LaunchRequest(AGENT), None)  # held for `first`
    heard: list[tuple[int, str]] = []

    async def ended(task: TaskRecord) -> None:
        heard.append((task.id, task.state))

    task_runs.listen_ended(ended)
    run = await run_task(register, fleet, first)
    await fleet.end(AGENT, run, "failed", code=1)
    assert heard == [(first.id, "failed")]
    told = await register.find(str(waits.id))
    assert told.state == "queued" and "which is failed" in told.why
