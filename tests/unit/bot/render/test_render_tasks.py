"""The work register's renderers: what an agent, a forge or an operator wrote (titles,
bodies, a run's reason, a branch, a forge reference, a mission's title) shows as plain
text; a story, a list and a mission fit a phone screen; spend is said as projected against
actual."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.render.work import tasks as render
from bot.render.work.tasks import Story
from fleet.ledger.records.peers import ReviewRecord
from fleet.ledger.records.rows import RunRecord
from fleet.ledger.records.tasks import (
    NO_PROJECTION,
    Actual,
    MissionRecord,
    Projection,
    TaskRecord,
)
from fleet.ledger.stores.running.runs import RunEnd, RunReport
from fleet.names import AgentName
from fleet.tasks.views import TaskView, mission_view, views
from tests.unit.chat_fakes import T0

HOSTILE = "<b>x</b> @room [click](https://evil.example) ```\n# heading\n**bold**"
MARKUP = ("<b>", "[click](", "```", "\n# heading", "**bold**")


def task(n: int, **given: object) -> TaskRecord:
    fields: dict[str, object] = {
        "id": n,
        "name": f"task-{n}",
        "title": f"Task {n}",
        "body": "",
        "source": "chat",
        "source_ref": "",
        "mission": None,
        "agent": "coder",
        "runtime": "claude",
        "repo": None,
        "state": "todo",
        "why": "",
        "asked_by": "@op:hs on matrix",
        "forge_run": None,
        "branch": None,
        "pull_url": None,
        "created_at": T0,
        "updated_at": T0,
        "started_at": None,
        "ended_at": None,
        "projection": NO_PROJECTION,
    }
    fields.update(given)
    return TaskRecord(**fields)  # type: ignore[arg-type]


def report(run_id: int, why: str) -> RunReport:
    run = RunRecord(
        run_id, AgentName("coder"), "subprocess", 1, 1, None, None, Path("/r"), Path("/l"),
        T0, T0 + timedelta(minutes=3), 0, "exited",
    )  # fmt: skip
    return RunReport(run, None, None, RunEnd("finished", why))


def plain(text: str) -> None:
    for markup in MARKUP:
        assert markup not in text, markup


def test_a_hostile_story_is_plain_text_and_short() -> None:
    projection = Projection("agent coder · runtime claude", (1, 2, 3), (900.0, 1500.0), (0.4, 0.9))
    told = task(
        7,
        title=HOSTILE,
        body=HOSTILE * 500,
        source="forge",
        source_ref="https://forge.example/o/r/issues/1 " + HOSTILE,
        state="failed",
        why=HOSTILE,
        branch="fw/coder/" + HOSTILE,
        pull_url="https://forge.example/pulls/2)[x](https://evil.example",
        runs=(1, 2, 3, 4, 5, 6),
        projection=projection,
        error=1.5,
        error_unit="usd",
    )
    story = render.story(
        Story(
            TaskView(told, Actual(1234, 0.6, 6)),
            after=[task(3, state="done")],
            runs=[report(i, HOSTILE) for i in (2, 3, 4, 5, 6)],
            mission=MissionRecord(1, "ship", HOSTILE, None, "op", T0),
        ),
        T0,
    )
    plain(story)
    assert len(story) < 3000 and len(story.splitlines()) < 30
    assert story.startswith("**Task #7 task-7** · failed (")
    assert "From forge issue https://forge.example/o/r/issues/1 " in story
    assert "Waits for: #3 task-3 (done)" in story
    assert "projected $0.40 (p90 $0.90) from 3 past tasks (agent coder · runtime claude)" in story
    assert "actual 1,234 tokens, $0.60" in story and "Off by ×1.50 (usd)" in story
    assert "Runs (6):\n… 1 earlier\n- run 2 · 03-01 12:00 · finished (" in story
    assert "more characters" in story


def test_the_list_puts_open_tasks_first_and_counts_the_ended() -> None:
    found = [task(i, state="done", ended_at=T0 + timedelta(minutes=i)) for i in range(1, 9)]
    found += [task(9, state="working", title=HOSTILE), task(10, state="todo", agent=None)]
    text = render.board(views(found, {9: Actual(5000, None, 1)}), "Tasks")
    lines = text.splitlines()
    assert lines[:3] == [
        "Tasks: 2 open, 8 ended",
        "- #10 task-10 · todo · no agent · –→0 tok",
        "- #9 task-9 · working · coder · –→5k tok",
    ]
    latest = "- #8 task-8 · done · coder · –→0 tok"  # the latest ended first
    assert lines[3:6] == ["", "Ended, latest first:", latest]
    assert lines[-1] == "… and 3 more: `tasks --state ended`"


def test_a_mission_sums_its_tasks_and_sub_missions() -> None:
    top = MissionRecord(1, "ship", HOSTILE, None, "op", T0)
    sub = MissionRecord(2, "docs", "", 1, "op", T0)
    projected = Projection("every task", (1, 2, 3), (100.0, 200.0), (1.0, 2.0))
    found = views(
        [
            task(1, mission=1, state="done", projection=projected),
            task(2, mission=2, state="working", projection=projected),
            task(3, mission=2, state="cancelled"),
        ],
        {1: Actual(100, 0.5, 1), 2: Actual(50, 0.25, 1)},
    )
    text = render.mission(mission_view(top, [top, sub], found))
    plain(text)
    lines = text.splitlines()
    assert lines[1] == "1 of 2 done · projected $2.00 (p90 $4.00) · actual 150 tokens, $0.75"
    assert lines[2] == "Tasks: 1 working, 1 done, 1 cancelled"
    assert "\n\nSub-missions:\n- docs: 0 of 1 done" in text


def test_a_cancelled_task_is_out_of_a_missions_projected_sums_its_spend_kept() -> None:
    """A cancelled task's projection is work that will not be done: out of the projected
    sums and the unprojected count; what its run spent stays in the actual."""
    top = MissionRecord(1, "ship", "Ship", None, "op", T0)
    projected = Projection("every task", (1, 2), (100.0, 200.0), (1.0, 2.0))
    found = views(
        [
            task(1, mission=1, state="done", projection=projected),
            task(2, mission=1, state="cancelled", projection=projected),
            task(3, mission=1, state="cancelled"),
        ],
        {1: Actual(100, 0.5, 1), 2: Actual(40, 0.2, 1)},
    )
    totals = mission_view(top, [top], found).totals
    assert totals.projected_usd == (1.0, 2.0) and totals.projected_tokens == (100.0, 200.0)
    assert totals.unprojected == 0 and totals.progress == "1 of 1 done"
    assert totals.actual_tokens == 140 and totals.actual_usd == 0.7


def test_a_mission_s_tokens_are_whole_whatever_the_sums_are_kept_in() -> None:
    """Sums kept as floats (a projection's medians, a store's SUM) read as whole tokens with
    separators, never `3,115.0` or `3115.0`; dollars in cents beside sub-cent amounts."""
    top = MissionRecord(1, "ship", "Ship", None, "op", T0)
    projected = Projection("every task", (1, 2), (1557.5, 4200.25), None)
    found = views(
        [task(1, mission=1, state="done", projection=projected)],
        {1: Actual(3115.0, 0.0059, 1)},  # type: ignore[arg-type]
    )
    lines = render.mission(mission_view(top, [top], found)).splitlines()
    assert lines[1] == (
        "1 of 1 done · projected 1,558 tokens (p90 4,200) · actual 3,115 tokens, $0.0059"
    )


def _round(n: int, state: str, commit: str) -> ReviewRecord:
    return ReviewRecord(
        n, 1, "coder", "reviewer", n, 2, "app", "fw/coder/1", commit, None, None,
        state,  # type: ignore[arg-type]
        "", T0, None,
    )  # fmt: skip


def test_the_review_line_names_the_commit_approved_and_the_round_after_it() -> None:
    """`task T`'s Review line: the approval that stands and what reads a later commit."""
    a, b = "a1b2c3d4e5f6" + "0" * 28, "9f8e7d6c5b4a" + "1" * 28
    approved = [_round(1, "approved", a)]
    assert render.review_line(approved) == (
        "Review: reviewer approved commit a1b2c3d4e5f6 (round 1 of 2); only that commit lands"
    )
    assert render.review_line([*approved, _round(2, "asked", b)]).endswith(
        "only that commit lands; round 2 of 2 reads 9f8e7d6c5b4a"
    )
    assert render.review_line([_round(1, "changes", a)]) == (
        "Review: round 1 of 2, reviewer asked for changes at a1b2c3d4e5f6"
    )
