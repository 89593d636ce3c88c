"""Tests for the ledger's work register (migration 28), on SQLite and PostgreSQL: a task is
made with its projection and read back whole, named from its title without clashes, moved
only from the states a move names, bound to its runs, whose metered usage is its actual to
the token; a finished task keeps what it cost and its error; missions nest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fleet.ledger import Ledger
from fleet.ledger.records.tasks import Actual, NewTask, Projection
from fleet.ledger.stores.work.tasks import name_from
from fleet.redaction.known import EnvSecrets
from fleet.redaction.redactor import Redactor
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0
from tests.unit.fleet.metering.test_run_watch import AGENT, SPEC, run_of, used

PROJECTED = Projection("agent a · runtime claude", (7, 3), (9000.0, 12000.0), (0.5, 0.75))


def test_a_name_is_made_from_the_title_short_and_never_an_id() -> None:
    assert name_from("Fix the login page, then the logout page") == "fix-the-login-page-then"
    assert name_from("42 problems") == "t-42-problems"
    assert name_from("") == "task"
    assert name_from("$(rm -rf /); `x`") == "rm-rf-x"
    assert name_from("ü" * 5) == "task"
    assert len(name_from("a" * 100)) == 24


async def test_a_task_is_made_with_its_projection_and_read_back_whole(ledger: Ledger) -> None:
    new = NewTask("Fix login", "chat", "@op:hs", body="the body", agent=AGENT, repo="app")
    first = await ledger.tasks.add_task(new, PROJECTED)
    second = await ledger.tasks.add_task(new, PROJECTED, after=[first.id, first.id])
    assert first.name == "fix-login" and second.name == "fix-login-2"
    assert second.after == (first.id,) and first.after == ()
    assert first.projection == PROJECTED and first.state == "todo" and first.open
    assert first.body == "the body" and first.agent == AGENT and first.repo == "app"
    assert await ledger.tasks.task_named("fix-login-2") == second
    assert await ledger.tasks.task(999) is None
    assert await ledger.tasks.waiting_for(first.id) == [second.id]
    named = await ledger.tasks.add_task(NewTask("x", "forge", "bob", name="fix-login"), PROJECTED)
    assert named.name == "fix-login-3"


async def test_a_move_happens_only_from_the_states_it_names(
    ledger: Ledger, clock: ManualClock
) -> None:
    task = await ledger.tasks.add_task(NewTask("t", "chat", "op"), PROJECTED)
    assert not await ledger.tasks.move(task.id, "working", came_from=("queued",))
    assert await ledger.tasks.move(task.id, "queued", "waits for a slot", came_from=("todo",))
    clock.advance(5)
    assert await ledger.tasks.move(task.id, "working", came_from=("queued",))
    moved = await ledger.tasks.task(task.id)
    assert moved is not None and moved.state == "working" and moved.started_at == clock.now()
    assert await ledger.tasks.tasks(states=("working",)) == [moved]
    assert await ledger.tasks.tasks(states=()) == []


async def test_the_actual_is_the_usage_metered_in_its_runs_to_the_token(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    task = await ledger.tasks.add_task(NewTask("t", "chat", "op", agent=AGENT), PROJECTED)
    other = await ledger.tasks.add_task(NewTask("u", "chat", "op", agent=AGENT), PROJECTED)
    one = await run_of(ledger, clock, tmp_path, SPEC, seconds=100)  # T0 .. T0+100
    outside = await run_of(ledger, clock, tmp_path, SPEC, seconds=100)  # T0+100 .. T0+200
    going = await run_of(ledger, clock, tmp_path, SPEC, seconds=0)  # open from T0+200
    await ledger.tasks.add_run(task.id, one)
    await ledger.tasks.add_run(task.id, going)
    await ledger.tasks.add_run(other.id, one)  # a run belongs to its first task
    await ledger.tasks.add_run(other.id, outside)
    await ledger.metering.record_metering(
        [used(50, 4000, 0.04), used(150, 1000, None), used(250, 333, 0.01)], []
    )
    actuals = await ledger.actuals.actuals([task.id, other.id, 999])
    assert actuals[task.id].tokens == 4333 and actuals[task.id].runs == 2
    assert abs((actuals[task.id].usd or 0) - 0.05) < 1e-9
    assert actuals[other.id] == Actual(1000, None, 1)
    assert actuals[999] == Actual(0, None, 0)
    assert await ledger.tasks.task_of_run(one) == task.id
    found = await ledger.tasks.task(task.id)
    assert found is not None and found.runs == (one, going)


async def test_a_finished_task_keeps_its_cost_and_error_for_later_projections(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    task = await ledger.tasks.add_task(
        NewTask("t", "chat", "op", agent=AGENT, runtime="claude", repo="app"), PROJECTED
    )
    idle = await ledger.tasks.add_task(NewTask("idle", "chat", "op", agent=AGENT), PROJECTED)
    run = await run_of(ledger, clock, tmp_path, SPEC, seconds=100)
    await ledger.tasks.add_run(task.id, run)
    spent = Actual(12000, 1.0, 1)
    assert await ledger.tasks.finish(
        task.id, "done", "merged", spent, (2.0, "usd"), came_from=("working", "todo")
    )
    assert not await ledger.tasks.finish(
        task.id, "failed", "late", spent, None, came_from=("working", "todo")
    )
    await ledger.tasks.finish(idle.id, "done", "", Actual(0, None, 0), None, came_from=("todo",))
    done = await ledger.tasks.task(task.id)
    assert done is not None and done.state == "done" and done.finished == spent
    assert done.error == 2.0 and done.error_unit == "usd" and done.ended_at == clock.now()
    assert await ledger.tasks.finished_tasks(agent=AGENT) == [(task.id, spent)]  # idle: no run
    assert await ledger.tasks.finished_tasks(repo="elsewhere") == []
    assert await ledger.tasks.finished_tasks(before=clock.now()) == []
    assert [t.id for t in await ledger.tasks.errors_since(T0)] == [task.id]
    assert await ledger.tasks.errors_since(clock.now() + timedelta(seconds=1)) == []


async def test_missions_nest_and_a_name_is_taken_once(ledger: Ledger) -> None:
    release = await ledger.missions.add_mission("release", "Ship 2.0", "op")
    assert release is not None and release.parent is None
    assert await ledger.missions.add_mission("release", "again", "op") is None
    docs = await ledger.missions.add_mission("docs", "", "op", parent=release.id)
    other = await ledger.missions.add_mission("other", "", "op")
    assert docs is not None and other is not None
    deeper = await ledger.missions.add_mission("guide", "", "op", parent=docs.id)
    assert deeper is not None
    tree = await ledger.missions.tree(release.id)
    assert [m.name for m in tree] == ["release", "docs", "guide"]
    assert await ledger.missions.mission_named("docs") == docs
    task = await ledger.tasks.add_task(NewTask("t", "chat", "op", mission=docs.id), PROJECTED)
    await ledger.tasks.set_fields(task.id, branch="fw/t-1", pull_url="https://x/pull/1")
    found = await ledger.tasks.tasks(missions=[m.id for m in tree])
    assert [t.id for t in found] == [task.id] and found[0].branch == "fw/t-1"


SECRET = "deploy-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
LABEL = "[redacted: DEPLOY_TOKEN]"
NAMES = ["DEPLOY_TOKEN"]


def redact(text: str) -> str:
    """The redactor of a Fleetwarden whose config names ``DEPLOY_TOKEN``."""
    return Redactor([EnvSecrets(["DEPLOY_TOKEN"], {"DEPLOY_TOKEN": SECRET})]).redact(text)


async def test_words_are_redacted_as_they_are_stored_and_the_row_says_so(ledger: Ledger) -> None:
    """With the running Fleetwarden's redactor, a task's words and a mission's title are
    stored redacted (its name made from the redacted title) and marked; a write without it
    takes the mark away."""
    plain = await ledger.tasks.add_task(NewTask("Before", "chat", "op"), PROJECTED)
    assert not plain.redacted
    ledger.tasks.redact_with(redact, names=NAMES)
    ledger.missions.redact_with(redact, names=NAMES)
    new = NewTask(
        f"{SECRET} rotate", "task", f"agent {SECRET}", body=f"use {SECRET}",
        source_ref=SECRET, why=f"because {SECRET}", name=SECRET,
    )  # fmt: skip
    task = await ledger.tasks.add_task(new, PROJECTED)
    assert task.redacted and task.name == "redacted-deploy-token"
    assert task.title == f"{LABEL} rotate" and task.body == f"use {LABEL}"
    assert (task.why, task.source_ref, task.asked_by) == (
        f"because {LABEL}",
        LABEL,
        f"agent {LABEL}",
    )
    await ledger.tasks.move(task.id, "working", f"said {SECRET}")
    await ledger.tasks.finish(
        task.id, "failed", f"ended {SECRET}", Actual(0, None, 0), None, came_from=("working",)
    )
    ended = await ledger.tasks.task(task.id)
    assert ended is not None and ended.why == f"ended {LABEL}" and ended.redacted
    mission = await ledger.missions.add_mission("ops", f"Keys {SECRET}", "op")
    assert mission is not None and mission.title == f"Keys {LABEL}" and mission.redacted

    unredacting = Ledger(ledger._access)  # another process's stores, without the redactor
    await unredacting.tasks.move(task.id, "todo", "again")
    again = await ledger.tasks.task(task.id)
    assert again is not None and not again.redacted


async def test_words_stored_before_are_redacted_once_and_a_secret_name_renamed(
    ledger: Ledger,
) -> None:
    """:meth:`redact_stored` redacts the rows stored without the redactor, renames a task
    whose name held a secret, marks them, and does nothing the second time."""
    old = await ledger.tasks.add_task(
        NewTask(f"{SECRET} rotate", "chat", "op", body=SECRET, why=SECRET, name=SECRET[:20]),
        PROJECTED,
    )
    assert old.name == SECRET[:20] and not old.redacted
    await ledger.missions.add_mission("ops", f"Keys {SECRET}", "op")
    assert await ledger.tasks.redact_stored() == 0  # no redactor: nothing to redact with
    ledger.tasks.redact_with(redact, names=NAMES)
    ledger.missions.redact_with(redact, names=NAMES)
    assert await ledger.tasks.redact_stored() == 1
    assert await ledger.missions.redact_stored() == 1
    task = await ledger.tasks.task(old.id)
    assert task is not None and task.redacted and task.name == "redacted-deploy-token"
    assert (task.title, task.body, task.why) == (f"{LABEL} rotate", LABEL, LABEL)
    mission = await ledger.missions.mission_named("ops")
    assert mission is not None and mission.title == f"Keys {LABEL}" and mission.redacted
    assert await ledger.tasks.redact_stored() == 0
    assert await ledger.missions.redact_stored() == 0


async def test_a_redactor_that_lacks_a_secret_redacts_but_never_marks(ledger: Ledger) -> None:
    """A Fleetwarden without every secret the config names redacts what it stores with what
    it knows, leaves the rows unmarked, and redacts nothing stored before as if whole."""
    old = await ledger.tasks.add_task(NewTask(f"Old {SECRET}", "chat", "op"), PROJECTED)
    ledger.tasks.redact_with(redact, names=NAMES, whole=False)
    ledger.missions.redact_with(redact, names=NAMES, whole=False)
    task = await ledger.tasks.add_task(NewTask(f"New {SECRET}", "chat", "op"), PROJECTED)
    assert task.title == f"New {LABEL}" and not task.redacted
    mission = await ledger.missions.add_mission("ops", f"Keys {SECRET}", "op")
    assert mission is not None and mission.title == f"Keys {LABEL}" and not mission.redacted
    assert await ledger.tasks.redact_stored() == 0
    assert await ledger.missions.redact_stored() == 0
    kept = await ledger.tasks.task(old.id)
    assert kept is not None and kept.title == f"Old {SECRET}" and not kept.redacted
