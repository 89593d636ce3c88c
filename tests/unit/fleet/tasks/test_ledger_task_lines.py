"""The tasks a line holds (SQLite and PostgreSQL): those whose own runs cut it, went on on it
or left their change on it; a merge of it ends each done — up for review, and failed before
all the same — as a forge merge does, and leaves another line's task, another agent's and a
forge task alone."""

from __future__ import annotations

from datetime import UTC, datetime

from fleet.ledger import Ledger
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.ledger.records.tasks import TaskRecord
from fleet.repos.facts import Change, CommitLine, change_to_json
from fleet.tasks.register import Register
from fleet.tasks.runs import TaskRuns
from tests.unit.fleet.metering.test_run_watch import AGENT
from tests.unit.fleet.tasks.test_ledger_register import Fleet, new, run_task

BRANCH = f"fw/{AGENT}/1"


def line_of(first: int, last: int, branch: str = BRANCH) -> LineRecord:
    """A live line of ``AGENT`` on ``app`` cut by run ``first``, last worked on by ``last``."""
    at = datetime(2026, 11, 27, tzinfo=UTC)
    return LineRecord(
        1, "app", str(AGENT), first, branch, "main", "f" * 40, "/co", LineState.LIVE, at,
        last_run=last,
    )  # fmt: skip


async def changed(ledger: Ledger, run: int, branch: str = BRANCH) -> None:
    """Run ``run`` left a commit on ``branch`` of ``app``."""
    change = Change(
        "app", str(AGENT), branch, "main", "f" * 40, "f" * 40, "a" * 40, 0,
        commits=(CommitLine("aaaaaaa", "work"),),
    )  # fmt: skip
    await ledger.lines.record_change(run, change_to_json(change))


async def reviewed(
    register: Register, fleet: Fleet, ledger: Ledger, title: str
) -> tuple[TaskRecord, int]:
    """A task whose run finished with a change on its branch: up for review; it and its run."""
    task = await register.new(new(title, agent=AGENT))
    run = await run_task(register, fleet, task)
    await changed(ledger, run)
    await fleet.end(AGENT, run, "finished")
    found = await register.find(str(task.id))
    assert found.state == "review" and found.branch == BRANCH
    return found, run


async def test_a_merge_of_a_line_ends_its_tasks_done_and_no_other(
    register: Register, fleet: Fleet, ledger: Ledger, task_runs: TaskRuns
) -> None:
    """Two tasks on the line (the second's run went on on it, its branch not yet kept) and
    one that failed on it are done; a task on another branch and another agent's stay."""
    first, first_run = await reviewed(register, fleet, ledger, "first")
    failing = await register.new(new("failing", agent=AGENT))
    failed_run = await run_task(register, fleet, failing)
    await changed(ledger, failed_run)
    await fleet.end(AGENT, failed_run, "failed", code=1)
    elsewhere = await register.new(new("elsewhere", agent=AGENT))
    other_run = await run_task(register, fleet, elsewhere)
    await changed(ledger, other_run, f"fw/{AGENT}/9")
    await fleet.end(AGENT, other_run, "finished")
    second = await register.new(new("second", agent=AGENT))
    second_run = await run_task(register, fleet, second)
    await fleet.end(AGENT, second_run, "stopped")  # back to do: its change never recorded
    someone = await register.new(new("someone else's", agent="someone"))
    line = line_of(first_run, second_run)
    on = await task_runs.on_line(line)
    assert [t.id for t in on] == [first.id, failing.id, second.id]
    why = f"{BRANCH} merged into main by @op:hs"
    done = await register.landed(line, why, by="@op:hs")
    assert [t.id for t in done] == [first.id, failing.id, second.id]
    for task in done:
        assert task.state == "done" and task.why == why and task.finished is not None
    assert (await register.find(str(elsewhere.id))).state == "review"
    assert (await register.find(str(someone.id))).state == "todo"
    assert await register.landed(line, why) == []  # merged again: nothing more to end


async def test_a_task_done_before_its_merge_stays_as_it_ended(
    register: Register, fleet: Fleet, ledger: Ledger
) -> None:
    """`task done` before the merge: the merge changes nothing of it."""
    task, run = await reviewed(register, fleet, ledger, "early")
    ended = await register.end(task, "done", "done by @op:hs")
    assert await register.landed(line_of(run, run), "merged") == []
    assert (await register.find(str(task.id))).why == ended.why
