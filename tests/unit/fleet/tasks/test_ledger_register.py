"""The register over a real ledger (SQLite and PostgreSQL): a task is made with its
projection from the finished tasks of its kind and keeps it; started through the admission,
its run is bound to it as the run starts and it is ``working``; as the run ends it moves
(done, review with a change, failed, back to todo when stopped); a task waiting for another
is held ``queued`` and started where it was asked once the other is done; a restart goes on
with the task; what an operator types that names nothing is told how to find it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from fleet.events import EventKind, FleetEvent, Listener
from fleet.ledger import Ledger
from fleet.ledger.records.tasks import Actual, NewTask, TaskRecord
from fleet.ledger.stores.running.runs import RunEnd, RunStart
from fleet.model import AgentSpec, AgentState, DesiredState, ExitInfo, RunHandle
from fleet.names import AgentName
from fleet.supervisor.admission.request import LaunchRequest, Started
from fleet.supervisor.status import AgentStatus, SpawnOutcome
from fleet.tasks.asked import Asker, HeldStart
from fleet.tasks.projection import Kind, kinds
from fleet.tasks.register import Register, TaskError, Waiting, source_of, title_of
from fleet.tasks.runs import TaskRuns
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0
from tests.unit.fleet.metering.test_run_watch import AGENT, used


class Fleet:
    """The supervisor as the admission launches through it: each launch a run in the
    ledger, its start heard by the register's listener as the real keeper emits it."""

    def __init__(self, ledger: Ledger, tmp_path: Path, runs: TaskRuns) -> None:
        self.ledger, self.tmp_path, self.task_runs = ledger, tmp_path, runs
        self.running: set[str] = set()
        self.stopped: list[tuple[str, str]] = []
        self.listeners: list[Listener] = []  # a run's end heard after the tasks', as subscribed
        self.starting: Callable[[str, int], Awaitable[object]] | None = None
        """Called once a run is recorded, before its start is heard (its agent at work)."""

    async def fallback_of(self, name: str) -> None:
        return None

    async def spec(self, name: str) -> AgentSpec:
        return AgentSpec(AgentName(name), "claude")

    async def spawn(self, request: LaunchRequest) -> SpawnOutcome:
        name = request.agent
        started = name not in self.running
        if started:
            await self.launch(name)
        state = AgentStatus(
            AgentName(name), "claude", "subprocess", None, AgentState.RUNNING, "", 7, T0, None,
            None, None,
        )  # fmt: skip
        return SpawnOutcome(state, started=started, pid=7)

    async def launch(self, name: str) -> int:
        self.running.add(name)
        await self.ledger.agents.upsert_agent(
            AgentSpec(AgentName(name), "claude"), DesiredState.RUNNING
        )
        handle = RunHandle("subprocess", 1, 1, self.tmp_path / name, self.tmp_path / "log")
        run = await self.ledger.runs.start_run(name, handle)
        start = RunStart("spawned by test", (), None, None, 0, "claude", None)
        await self.ledger.runs.record_run_start(run, start)
        if self.starting is not None:
            await self.starting(name, run.id)
        await self.task_runs.hear(
            FleetEvent(AgentName(name), EventKind.STARTED, AgentState.RUNNING, "", True, run.id)
        )
        return run.id

    async def end(self, name: str, run_id: int, outcome: str, code: int = 0) -> None:
        self.running.discard(name)
        await self.ledger.runs.end_run(run_id, ExitInfo(code, "exited"))
        await self.ledger.runs.record_run_end(run_id, RunEnd(outcome, "why"))
        ended = FleetEvent(AgentName(name), EventKind.ENDED, AgentState.EXITED, "", False, run_id)
        await self.task_runs.hear(ended)
        for listener in self.listeners:
            await listener(ended)


def since(clock: ManualClock) -> float:
    return (clock.now() - T0).total_seconds()


def new(title: str, **given: Any) -> NewTask:
    return NewTask(title, "chat", "@op:hs on console", **given)


async def run_task(register: Register, fleet: Fleet, task: TaskRecord) -> int:
    admitted = await register.start(task, LaunchRequest(AGENT, prompt=task.title), None)
    assert isinstance(admitted, Started) and admitted.outcome.started
    found = await register.find(str(task.id))
    assert found.state == "working" and found.runs
    return found.runs[-1]


def test_the_kinds_go_from_narrowest_to_every_task() -> None:
    assert kinds("a", "claude", "app") == [
        Kind("a", "claude", "app"),
        Kind("a", "claude"),
        Kind("a"),
        Kind(repo="app"),
        Kind(),
    ]
    assert kinds(None, None, None) == [Kind()]
    assert Kind("a", "claude", "app").words == "agent a · runtime claude · repository app"


def test_titles_and_sources() -> None:
    assert title_of("  fix\nthe   login\t") == "fix the login"
    assert len(title_of("x" * 500)) == 200
    assert source_of("schedule:3:2026-11-26T10:00") == ("schedule", "3")
    assert source_of("$event") == ("chat", "") and source_of(None) == ("chat", "")


async def test_a_task_runs_is_bound_and_its_actual_is_its_runs_usage(
    register: Register, fleet: Fleet, ledger: Ledger, clock: ManualClock
) -> None:
    task = await register.new(new("Fix login", agent=AGENT, runtime="claude"))
    assert task.projection.count == 0 and task.projection.tokens is None
    run = await run_task(register, fleet, task)
    await ledger.metering.record_metering([used(0, 4000, 0.04), used(0, 1000, None)], [])
    clock.advance(10)
    await fleet.end(AGENT, run, "finished")
    done = await register.find(task.name)
    assert done.state == "done" and done.finished is not None
    assert done.finished.tokens == 5000 and done.finished.usd == pytest.approx(0.04)
    assert (await register.view(done)).actual.tokens == 5000
    assert done.error is None  # it had no projection to be off from


async def test_projections_come_from_finished_tasks_of_the_kind_and_are_kept(
    register: Register, fleet: Fleet, ledger: Ledger, clock: ManualClock
) -> None:
    for tokens in (1000, 2000, 3000):
        task = await register.new(new("work", agent=AGENT, runtime="claude", repo="app"))
        run = await run_task(register, fleet, task)
        await ledger.metering.record_metering([used(since(clock), tokens, None)], [])
        clock.advance(10)
        await fleet.end(AGENT, run, "finished")
    narrow = await register.new(new("more", agent=AGENT, runtime="claude", repo="app"))
    assert narrow.projection.basis == f"agent {AGENT} · runtime claude · repository app"
    assert narrow.projection.count == 3 and narrow.projection.tokens == (2000.0, 2800.0)
    other = await register.new(new("elsewhere", agent="someone-else"))
    assert other.projection.basis == "every task" and other.projection.count == 3
    run = await run_task(register, fleet, narrow)
    await ledger.metering.record_metering([used(since(clock), 4000, None)], [])
    clock.advance(10)
    await fleet.end(AGENT, run, "finished")
    kept = await register.find(str(narrow.id))
    assert kept.projection == narrow.projection  # unchanged by its run
    assert kept.error == pytest.approx(2.0) and kept.error_unit == "tokens"


async def test_the_guides_example_two_of_its_kind_win_over_every_task(
    register: Register, fleet: Fleet, ledger: Ledger
) -> None:
    """The guide's example, with other work done before: two finished tasks of the agent and
    runtime project the next one, not the five of every task."""
    for agent, tokens in (("a", 100), ("b", 100), ("c", 100), (AGENT, 1000), (AGENT, 3000)):
        task = await register.new(new("work", agent=agent, runtime="stub"))
        await ledger.tasks.add_run(task.id, await fleet.launch(agent))
        spent = Actual(tokens, None, 1)
        assert await ledger.tasks.finish(task.id, "done", "done", spent, None, came_from=("todo",))
    made = await register.new(new("notes", agent=AGENT, runtime="stub"))
    assert made.projection.basis == f"agent {AGENT} · runtime stub"
    assert made.projection.count == 2 and made.projection.tokens == (2000.0, 2800.0)


async def test_a_run_ends_its_task_by_how_it_went(
    register: Register, fleet: Fleet, ledger: Ledger
) -> None:
    failing = await register.new(new("fails", agent=AGENT))
    run = await run_task(register, fleet, failing)
    await fleet.end(AGENT, run, "failed", code=1)
    failed = await register.find(str(failing.id))
    assert failed.state == "failed" and "`task start" in failed.why
    stopped = await register.new(new("stopped", agent=AGENT))
    run = await run_task(register, fleet, stopped)
    await fleet.end(AGENT, run, "stopped")
    back = await register.find(str(stopped.id))
    assert back.state == "todo" and back.started_at is not None
    again = await run_task(register, fleet, back)  # started again, its second run
    assert (await register.find(str(back.id))).runs == (run, again)


async def test_a_restart_goes_on_with_the_agents_task(
    register: Register, fleet: Fleet, ledger: Ledger
) -> None:
    task = await register.new(new("long", agent=AGENT))
    first = await run_task(register, fleet, task)
    await fleet.end(AGENT, first, "stalled and restarted")
    assert (await register.find(str(task.id))).state == "working"
    second = await fleet.launch(AGENT)  # the watchdog's restart: not through the admission
    found = await register.find(str(task.id))
    assert found.runs == (first, second) and found.state == "working"
    await fleet.end(AGENT, second, "finished")
    unrelated = await fleet.launch(AGENT)  # a later run after the task ended: not its
    assert await ledger.tasks.task_of_run(unrelated) is None


async def test_a_task_waits_for_another_then_starts_where_it_was_asked(
    register: Register, fleet: Fleet
) -> None:
    first = await register.new(new("first", agent=AGENT))
    second = await register.new(new("second", agent="coder-2"), after=[first])
    asker = Asker("console", "console", "op")
    waiting = await register.start(second, LaunchRequest("coder-2"), None, asked_in=asker)
    assert isinstance(waiting, Waiting) and f"#{first.id} first (todo)" in waiting.why
    held = await register.find(str(second.id))
    assert held.state == "queued" and json.loads(held.asked_in or "") == asker.kept()
    started: list[int] = []

    async def starter(held: HeldStart) -> bool:
        started.append(held.task.id)
        assert (held.request.origin, held.request.task, held.request.by) == (
            "task",
            held.task.id,
            "op on console",
        )
        assert (
            held.asker == Asker("console", "console", "op") and held.event == f"task:{second.id}:0"
        )
        return True

    register.held.listen(starter)
    run = await run_task(register, fleet, first)
    assert started == []
    await fleet.end(AGENT, run, "finished")
    await register.settled()
    assert started == [second.id]


async def test_a_task_whose_wait_cannot_end_is_told_and_nothing_else_starts(
    register: Register,
) -> None:
    first = await register.new(new("first", agent=AGENT))
    second = await register.new(new("second", agent=AGENT), after=[first])
    await register.start(second, LaunchRequest(AGENT), None)
    await register.end(first, "cancelled", "not needed")
    told = await register.find(str(second.id))
    assert told.state == "queued" and "which is cancelled" in told.why
    with pytest.raises(TaskError, match="already ended"):
        await register.end(first, "done", "")  # as it was before it ended: read again
    late = await register.new(new("late", agent=AGENT), after=[first])
    with pytest.raises(TaskError, match="which was cancelled: it would wait for ever"):
        await register.start(late, LaunchRequest(AGENT), None)
    third = await register.new(new("third", agent=AGENT))
    await register.start(third, LaunchRequest(AGENT), None)
    with pytest.raises(TaskError, match="is working"):
        await register.start(third, LaunchRequest(AGENT), None)


async def test_what_names_nothing_says_how_to_find_it(register: Register) -> None:
    with pytest.raises(TaskError, match="`tasks` lists them"):
        await register.find("#404")
    with pytest.raises(TaskError, match="`tasks` lists them"):
        await register.find("x" * 500)
    with pytest.raises(TaskError, match="a task needs a title"):
        await register.new(new("   "))
    with pytest.raises(TaskError, match="invalid mission name"):
        await register.new_mission("Release!", "", "op")
    release = await register.new_mission("release", "Ship it", "op")
    with pytest.raises(TaskError, match="exists"):
        await register.new_mission("release", "", "op")
    with pytest.raises(TaskError, match="`mission new docs` makes it"):
        await register.find_mission("docs")
    docs = await register.new_mission("docs", "", "op", parent=release)
    await register.new(new("write", mission=docs.id))
    view = await register.mission_view(release)
    assert view.totals.tasks == 1 and view.subs[0].mission == docs
    assert view.totals.progress == "0 of 1 done"


async def test_a_turn_over_is_for_review_and_done_frees_the_agent_for_the_next(
    register: Register, fleet: Fleet, task_runs: TaskRuns
) -> None:
    first = await register.new(new("first", agent=AGENT))
    second = await register.new(new("second", agent=AGENT), after=[first])
    await register.start(second, LaunchRequest(AGENT), None)

    async def starter(held: HeldStart) -> bool:
        return isinstance(await register.start(held.task, held.request, None), Started)

    register.held.listen(starter)
    run = await run_task(register, fleet, first)
    # the fleet's word that the live session's turn ended
    await task_runs.hear(FleetEvent(AGENT, EventKind.TURN_OVER, AgentState.IDLE, "", False, run))
    review = await register.find(str(first.id))
    assert review.state == "review" and f"`task done {first.id}`" in review.why
    await register.end(review, "done", "looks right", by="op")
    await register.settled()
    assert fleet.stopped == [(AGENT, f"op: task #{first.id} first done")]
    assert (await register.find(str(first.id))).state == "done"  # its run's end moved nothing
    started = await register.find(str(second.id))
    assert started.state == "working" and started.runs and started.runs[-1] != run


async def test_a_held_start_tells_the_agent_what_its_task_was_told_since(
    register: Register, ledger: Ledger
) -> None:
    """A pipeline writes what the stages before left into the next stage's body just before
    it starts it: the held start's prompt is the task as stored then, not as handed over."""
    task = await register.new(new("code", agent=AGENT))
    await ledger.tasks.set_body(task.id, "Branch: fw/planner/1")
    prompts: list[str | None] = []

    async def starter(held: HeldStart) -> bool:
        prompts.append(held.request.prompt)
        return True

    register.held.listen(starter)
    register.held.start(task, "pipeline")  # the record from before its body was written
    await register.settled()
    assert prompts == ["code\n\nBranch: fw/planner/1"]
