"""The task a forge run is, over a real ledger (SQLite and PostgreSQL), the in-memory forge
and the fake launcher: an issue given to an agent makes one task (a replay of the event, a
restart find it), every launch of the run carries it, it moves as the run goes (queued,
working, review, done on the merge; cancelled when the issue is closed or unlabelled or the
pull request closed unmerged; failed when the agent could not finish), and its stored
projection shows beside its actual on the status comment and the footer, the issue's own
words escaped."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fleet.forge.model import EventKind
from fleet.forge.tasks import ForgeTasks, task_state
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunState
from fleet.ledger.records.tasks import Actual, NewTask, TaskRecord
from fleet.tasks.register import Register
from fleet.tasks.runs import TaskRuns
from fleet.tasks.spent import TaskSpend
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.launches import an_admission
from tests.unit.fleet.forge.runs.work_rig import AGENT, BRANCH, LABEL, SLUG, WorkRig, event
from tests.unit.fleet.tasks.test_ledger_register import Fleet

HOSTILE = "<img src=x onerror=alert(1)> @everyone [click](https://evil.example) ```fence"


@pytest.fixture
def register(ledger: Ledger, clock: ManualClock, tmp_path: Path) -> Register:
    runs = TaskRuns(
        tasks=ledger.tasks,
        actuals=ledger.actuals,
        runs=ledger.runs,
        lines=ledger.lines,
        spawn_queue=ledger.spawn_queue,
    )
    fleet = Fleet(ledger, tmp_path, runs)
    admission = an_admission(fleet, slots=None, budgets=None, tasks=runs)  # type: ignore[arg-type]
    return Register(
        tasks=ledger.tasks,
        missions=ledger.missions,
        actuals=ledger.actuals,
        runs=runs,
        admission=admission,
    )


def forge_tasks(ledger: Ledger, register: Register) -> ForgeTasks:
    return ForgeTasks(
        register=register,
        tasks=ledger.tasks,
        spend=TaskSpend(tasks=ledger.tasks, actuals=ledger.actuals),
        forge=ledger.forge,
        runtime=runtime,
    )


async def runtime(agent: str) -> str | None:
    return "claude" if agent == AGENT else None


@pytest.fixture
def forge_tasks_rig(ledger: Ledger, clock: ManualClock, register: Register) -> WorkRig:
    return WorkRig.make(ledger, clock, tasks=forge_tasks(ledger, register))


async def task_of(rig: WorkRig, key: int) -> TaskRecord:
    task = await rig.ledger.tasks.task_of_forge_run(key)
    assert task is not None, f"forge run {key} has no task"
    return task


async def with_pull(rig: WorkRig, pull: int = 18) -> int:
    """A run on #3 whose done opened pull request ``pull``, waiting for review; its key."""
    record = await rig.started()
    await rig.ledger.forge.update_forge_run(
        record.id,
        pull=pull,
        pull_url=f"https://github.com/acme/app/pull/{pull}",
        state=ForgeRunState.WAITING,
        done_signal="agent",
        done_status="ok",
    )
    await rig.work.publisher.refresh(record.id)
    rig.launcher.running.discard(AGENT)
    return record.id


def test_every_forge_run_state_maps_to_a_task_state() -> None:
    assert {state: task_state(state) for state in ForgeRunState} == {
        ForgeRunState.QUEUED: "queued",
        ForgeRunState.WORKING: "working",
        ForgeRunState.WAITING: "review",
        ForgeRunState.UNPUBLISHED: "review",
        ForgeRunState.FAILED: "failed",
        ForgeRunState.STOPPED: "cancelled",
        ForgeRunState.ENDED: "cancelled",
    }
    assert task_state(ForgeRunState.ENDED, merged=True) == "done"


async def test_a_labelled_issue_is_one_task_carried_by_its_launch(forge_tasks_rig: WorkRig) -> None:
    record = await forge_tasks_rig.started()
    task = await task_of(forge_tasks_rig, record.id)
    assert (task.source, task.source_ref) == ("forge", record.issue_url)
    assert (task.title, task.body) == (
        "Fix the parser",
        "The parser drops the last line of every file.",
    )
    assert (task.agent, task.runtime, task.repo) == (AGENT, "claude", "app")
    assert task.forge_run == record.id
    assert task.asked_by == "@alice on hub"
    assert task.projection.count == 0  # none finished before: stored as none
    assert forge_tasks_rig.launcher.tasks == [task.id]
    assert task.state == "working" and task.branch == BRANCH
    said = forge_tasks_rig.status(await forge_tasks_rig.record(record.id)).history[-1]
    line = f"`#{task.id}`: no projection: no finished task of its kind yet · actual so far 0 tokens"
    assert f"\n\nTask {line}" in said and f"**Task** {line}" in said  # the body's, the footer's
    # The same event again, and another trigger on the issue: no second task.
    again = await forge_tasks_rig.deliver(event(EventKind.LABELED, label=LABEL, delivery="d-again"))
    assert again.startswith("ignored")
    assert len(await forge_tasks_rig.ledger.tasks.tasks()) == 1


async def test_a_queued_run_is_a_queued_task_then_working(forge_tasks_rig: WorkRig) -> None:
    forge_tasks_rig.launcher.busy_why[AGENT] = f"{AGENT} is starting another run"
    outcome = await forge_tasks_rig.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome.startswith("queued")
    record = await forge_tasks_rig.run()
    assert (await task_of(forge_tasks_rig, record.id)).state == "queued"
    del forge_tasks_rig.launcher.busy_why[AGENT]
    await forge_tasks_rig.queue_turn()  # the spawn queue gives it its turn
    task = await task_of(forge_tasks_rig, record.id)
    assert task.state == "working" and forge_tasks_rig.launcher.tasks == [task.id]


async def test_the_merge_ends_the_task_done_with_its_pull_request(forge_tasks_rig: WorkRig) -> None:
    key = await with_pull(forge_tasks_rig)
    review = await task_of(forge_tasks_rig, key)
    assert review.state == "review" and review.pull_url == "https://github.com/acme/app/pull/18"
    assert "pull request #18" in review.why
    ev = event(EventKind.PULL_CLOSED, 18, actor="bob", is_pull=True, merged=True, head=BRANCH)
    await forge_tasks_rig.deliver(ev)
    done = await task_of(forge_tasks_rig, key)
    assert done.state == "done" and done.finished == Actual(0, None, 0)
    said = forge_tasks_rig.status(await forge_tasks_rig.record(key)).history[-1]
    assert f"Task `#{done.id}`: no projection" in said and " · actual 0 tokens" in said


async def test_a_pull_request_closed_unmerged_cancels_the_task(forge_tasks_rig: WorkRig) -> None:
    key = await with_pull(forge_tasks_rig)
    await forge_tasks_rig.deliver(
        event(EventKind.PULL_CLOSED, 18, is_pull=True, merged=False, head=BRANCH)
    )
    task = await task_of(forge_tasks_rig, key)
    assert task.state == "cancelled" and "closed" in task.why


async def test_the_issue_unlabelled_cancels_the_task(forge_tasks_rig: WorkRig) -> None:
    record = await forge_tasks_rig.started()
    await forge_tasks_rig.deliver(event(EventKind.UNLABELED, label=LABEL))
    task = await task_of(forge_tasks_rig, record.id)
    assert (task.state, task.why) == ("cancelled", "the issue was unlabelled by @alice")


async def test_a_failed_run_fails_its_task_and_a_comment_takes_it_up_again(
    forge_tasks_rig: WorkRig,
) -> None:
    record = await forge_tasks_rig.started()
    await forge_tasks_rig.ledger.forge.update_forge_run(
        record.id, done_signal="agent", done_status="failed", summary="no idea"
    )
    await forge_tasks_rig.work.publisher.publish(await forge_tasks_rig.record(record.id))
    failed = await task_of(forge_tasks_rig, record.id)
    assert failed.state == "failed" and failed.finished is not None
    forge_tasks_rig.launcher.running.discard(AGENT)
    comment = event(EventKind.COMMENT, body=f"@{forge_tasks_rig.entry.login} try again")
    assert (await forge_tasks_rig.deliver(comment)).startswith("continued")
    assert (await task_of(forge_tasks_rig, record.id)).state == "working"


async def test_a_restart_finds_the_task_made_before(
    forge_tasks_rig: WorkRig, ledger: Ledger, clock: ManualClock, register: Register
) -> None:
    record = await forge_tasks_rig.started()
    first = await task_of(forge_tasks_rig, record.id)
    again = WorkRig.make(
        ledger,
        clock,
        api=forge_tasks_rig.api,
        launcher=forge_tasks_rig.launcher,
        tasks=forge_tasks(ledger, register),
    )
    assert again.work.publisher.posts.source.tasks is not None
    found = await again.work.publisher.posts.source.tasks.made(
        await forge_tasks_rig.record(record.id)
    )
    assert found.id == first.id and len(await ledger.tasks.tasks()) == 1


async def test_a_hostile_title_is_escaped_where_the_task_shows(
    ledger: Ledger, clock: ManualClock, register: Register
) -> None:
    rig = WorkRig.make(ledger, clock, tasks=forge_tasks(ledger, register))
    issue = rig.api.issues[(str(SLUG), 3)]
    rig.api.issues[(str(SLUG), 3)] = replace(issue, title=HOSTILE, body=HOSTILE)
    record = await rig.started()
    task = await task_of(rig, record.id)
    assert task.title == HOSTILE  # kept as written; every surface escapes it
    said = rig.status(await rig.record(record.id)).history[-1]
    assert "<img" not in said and "@everyone" not in said and "](https://evil" not in said
    assert "```" not in said


async def test_a_task_made_by_hand_is_not_a_forge_runs(
    forge_tasks_rig: WorkRig, register: Register
) -> None:
    made = await register.new(NewTask("by hand", "chat", "@op", agent=AGENT))
    record = await forge_tasks_rig.started()
    assert (await task_of(forge_tasks_rig, record.id)).id != made.id
