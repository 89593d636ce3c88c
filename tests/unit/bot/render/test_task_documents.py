"""TASKS.md and MISSIONS.md as `fleetwarden tasks --markdown` writes them: tasks by state,
open first, each with its projection beside its actual; missions nested with their
progress and sums; and hostile titles, names and addresses that add no markdown of their
own — no heading, link, image, HTML, code block, table or line — however they are made."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.render.work.task_documents import (
    VALUE_CAP,
    generated_line,
    missions_document,
    tasks_document,
)
from fleet.ledger.records.tasks import (
    NO_PROJECTION,
    Actual,
    MissionRecord,
    Projection,
    TaskRecord,
    TaskState,
)
from fleet.tasks.views import TaskView

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PROJECTED = Projection("agent coder · runtime claude", (4, 2), (9000.0, 12000.0), (0.5, 0.75))
HOSTILE = (
    "# x",
    "[a](javascript:x)",
    "![i](http://x)",
    "<img src=x onerror=alert(1)>",
    "a | b | c",
    "```\nfenced\n```",
    "one\ntwo\r\n# three",
    "~~~ tilde\n- item\n> quote\n---",
    "<!-- hidden",
    "x" * 10_000,
)
PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def task(
    task_id: int,
    state: TaskState = "todo",
    *,
    title: str = "Fix the login page",
    mission: int | None = None,
    projection: Projection = PROJECTED,
    **more: object,
) -> TaskRecord:
    record = TaskRecord(
        id=task_id, name=f"task-{task_id}", title=title, body="", source="chat",
        source_ref="", mission=mission, agent="coder", runtime="claude", repo="app",
        state=state, why="", asked_by="@op:hs", forge_run=None, branch=None, pull_url=None,
        created_at=AT, updated_at=AT, started_at=None, ended_at=None, projection=projection,
    )  # fmt: skip
    return replace(record, **more)  # type: ignore[arg-type]


def mission(
    mission_id: int, name: str, parent: int | None = None, title: str = ""
) -> MissionRecord:
    return MissionRecord(mission_id, name, title or name.capitalize(), parent, "@op:hs", AT)


def tokens(markdown: str) -> list[Token]:
    """Every token of ``markdown``, the inline ones too."""
    found: list[Token] = []
    for token in PARSER.parse(markdown):
        found.append(token)
        found.extend(token.children or [])
    return found


def test_tasks_are_listed_by_state_open_first_with_projected_beside_actual() -> None:
    found = [
        TaskView(task(1, "done"), Actual(8123, 0.41, 2)),
        TaskView(
            task(2, "working", branch="fleet/coder/login", pull_url=None), Actual(500, None, 1)
        ),
        TaskView(task(3, "todo", projection=NO_PROJECTION), Actual(0, None, 0)),
    ]
    text = tasks_document(found, [])
    assert text.startswith(generated_line("The register's tasks") + "\n\n# Tasks\n")
    assert "fleetwarden tasks --markdown" in text.splitlines()[0]
    assert "Do not edit it by hand" in text.splitlines()[0]
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Todo (1)", "## Working (1)", "## Done (1)"]
    assert "3 tasks: 1 todo, 1 working, 1 done." in text
    assert "- **#1 task-1** — Fix the login page" in text
    assert (
        "projected: 9,000 tokens (p90 12,000), $0.50 (p90 $0.75), from 2 past tasks "
        "(agent coder · runtime claude)"
    ) in text
    assert "actual: 8,123 tokens, $0.41 (2 runs)" in text
    assert "actual: 500 tokens, not priced (1 run)" in text
    assert "projected: none (no finished task yet)" in text
    assert "branch: fleet/coder/login · pull request: —" in text
    # The sums: two projected tasks, one without; the actual over all three.
    assert "- projected: 18,000 tokens (p90 24,000), $1.00 (p90 $1.50) (1 task without one)" in text
    assert "- actual: 8,623 tokens, $0.41" in text


def test_no_tasks_says_so() -> None:
    assert tasks_document([], []).endswith("# Tasks\n\nNo tasks yet.\n")
    assert missions_document([], []).endswith("# Missions\n\nNo missions yet.\n")


def test_missions_nest_with_their_progress_sums_and_tasks() -> None:
    missions = [mission(1, "auth", title="Authentication rework"), mission(2, "login", 1),
                mission(3, "docs")]  # fmt: skip
    found = [
        TaskView(task(1, "done", mission=1), Actual(1000, 0.10, 1)),
        TaskView(task(2, "working", mission=2), Actual(300, 0.02, 1)),
        TaskView(task(3, "cancelled", mission=2), Actual(0, None, 0)),
        TaskView(task(4, "todo"), Actual(0, None, 0)),
    ]
    text = missions_document(found, missions)
    assert text.startswith(generated_line("The mission manifest") + "\n\n# Missions\n")
    lines = text.splitlines()
    assert "## Authentication rework — auth (mission 1)" in lines
    assert "### Login — login (mission 2)" in lines
    assert "## Docs — docs (mission 3)" in lines
    top = lines.index("## Authentication rework — auth (mission 1)")
    assert lines[top + 2] == "- progress: 1 of 2 done (1 working, 1 done, 1 cancelled)"
    # The cancelled task's projection is out of the sums: its work will not be done.
    assert lines[top + 3].startswith("- projected: 18,000 tokens (p90 24,000)")
    assert lines[top + 4] == "- actual: 1,300 tokens, $0.12"
    sub = lines.index("### Login — login (mission 2)")
    assert lines[sub + 2] == "- progress: 0 of 1 done (1 working, 1 cancelled)"
    assert any(line.startswith("- **#2 task-2** — Fix the login page · working") for line in lines)
    assert "- progress: no tasks yet" in text
    assert "1 task in no mission: see TASKS.md. 0 of 1 done (1 todo)" in text
    only = missions_document(found[1:3], missions[1:2], only=2)
    assert "## Login — login (mission 2)" in only and "Authentication" not in only
    assert "in no mission" not in only


def test_hostile_titles_names_and_addresses_add_no_markdown_of_their_own() -> None:
    missions = [mission(1, "m", title=HOSTILE[0]), mission(2, "n", 1, title=HOSTILE[5])]
    found = [
        TaskView(
            task(
                i + 1,
                "working" if i % 2 else "done",
                title=hostile,
                mission=1 + i % 2,
                name=hostile,
                agent=hostile,
                repo=hostile,
                branch=hostile,
                pull_url=f"javascript:alert(1)//{hostile}",
                why=hostile,
                projection=replace(PROJECTED, basis=hostile),
            ),
            Actual(10, 0.01, 1),
        )
        for i, hostile in enumerate(HOSTILE)
    ]
    for text, ours in (
        (tasks_document(found, missions, scope="mission m"), 3),
        (missions_document(found, missions), 3),
    ):
        kinds = {token.type for token in tokens(text)}
        assert not kinds & {"image", "link_open", "html_inline", "html_block", "fence",
                            "code_block", "table_open", "hr"}, kinds  # fmt: skip
        opened = [t.type for t in tokens(text)]
        assert opened.count("heading_open") == ours, text[:2000]
        assert opened.count("blockquote_open") == 1  # the generated line's, ours
        assert "<img" not in text and "<!--" not in text
        # Each value stayed on its own line: as many lines as a tame register gives.
        tame = [TaskView(replace(v.task, title="t", name="n", agent="a", repo="r",
                                 branch="b", pull_url="p", why="w",
                                 projection=PROJECTED), v.actual) for v in found]  # fmt: skip
        tame_missions = [replace(m, title="t") for m in missions]
        again = (
            tasks_document(tame, tame_missions, scope="mission m")
            if text.startswith(generated_line("The register's tasks"))
            else missions_document(tame, tame_missions)
        )
        assert len(text.splitlines()) == len(again.splitlines())
        # A 10 kB value is cut to a line's worth.
        assert max(len(line) for line in text.splitlines()) < 12 * VALUE_CAP
