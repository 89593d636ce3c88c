"""``fleetwarden status tasks`` and ``status changes`` as tables for people: the tasks with
their projection beside their actual and the missions' sums; the cost per merged change
exactly as ``report changes`` says it in chat; hostile text and wrong types from the
server shown as text or as none, never driving the terminal."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.cli.status.command import WHATS
from bot.cli.status.tables import changes_text, tasks_text
from bot.cli.status.text import shown
from bot.dashboard.pages.change_costs import row_json
from bot.render.spend.change_costs import changes_report
from connectors.markdown import to_plain
from fleet.budgets.changes.report import ChangeRow, ChangesReport

HOSTILE = "[x](https://evil.example) **b** \x1b[2J\u202eexe.txt\n✅ forged line"
SINCE = datetime(2026, 10, 28, 9, 0, tzinfo=UTC)


def _row(agent: str, merged: int, cost: float) -> ChangeRow:
    return ChangeRow(
        agent=agent, runtime="claude", model="claude-sonnet-4-5", merged=merged, closed=1,
        abandoned=0, open=2, tokens=42_000, cost_usd=cost, merged_tokens=30_000,
        merged_cost_usd=cost / 2, median_merged_cost_usd=cost / 4, median_merged_tokens=15_000.0,
        median_time_to_merge=5400.0, approvals=1, unpriced=3,
    )  # fmt: skip


def test_status_changes_shows_what_report_changes_shows() -> None:
    """The API's rows, laid out by `status changes`, are `report changes`' own table and
    words for the same rows."""
    rows = (_row("coder", 3, 1.2), _row("fixer", 1, 0.4))
    total = _row("all", 4, 1.6)
    found = ChangesReport(SINCE, rows, total)
    data = {
        "since": SINCE.isoformat(),
        "days": 30,
        "rows": [row_json(r, str) for r in rows],
        "total": row_json(total, str),
    }
    text = changes_text(data)
    assert text == to_plain(changes_report(found, window="30d"))
    assert "Cost per merged change in the last 30d (since 2026-10-28 09:00 UTC)" in text
    assert "coder" in text and "fixer" in text and "$1.20" in text
    assert "changes" in WHATS


def test_status_changes_with_none_says_what_a_change_is() -> None:
    """No change in the window: the words `report changes` says, not an empty table."""
    text = changes_text({"since": SINCE.isoformat(), "days": 30, "rows": [], "total": {}})
    assert text.startswith("No change came to an end, or was worked on, in the last 30d")


def test_status_tasks_is_a_table_of_tasks_and_missions() -> None:
    """Each task with its state, agent, mission, projected median beside its actual and
    why; each mission with its progress and sums; hostile titles and wrong types inert."""
    data = {
        "counts": {"todo": 1, "working": 1, "review": 0, "done": 1, "cancelled": 0},
        "ended_shown": 20,
        "tasks": [
            {
                "id": 3, "name": "fix-login", "state": "working", "agent": "coder",
                "mission": "release", "why": "run 41 of coder going",
                "projection": {"usd": [0.4, 0.9], "tokens": [9000.0, 12000.0]},
                "actual": {"tokens": 6200, "usd": 0.12, "runs": 1},
            },
            {
                "id": 4, "name": HOSTILE, "state": "todo", "agent": None, "mission": None,
                "why": HOSTILE, "projection": {"usd": None, "tokens": None},
                "actual": {"tokens": "many", "usd": True},
            },
            {
                "id": 1, "name": "notes", "state": "done", "agent": "writer", "mission": None,
                "why": "", "projection": {"usd": None, "tokens": [9000.0, 12000.0]},
                "actual": {"tokens": 8123, "usd": None},
            },
        ],
        "missions": [
            {"name": "release", "parent": None, "totals": {
                "progress": "0 of 1 done", "projected_usd": [0.4, 0.9],
                "actual_tokens": 6200, "actual_usd": 0.12}},
        ],
    }  # fmt: skip
    text = shown(tasks_text(data))
    lines = text.splitlines()
    assert lines[0] == "3 tasks, 2 open (1 todo, 1 working, 1 done)"
    row = next(line for line in lines if "#3 fix-login" in line)
    cells = re.split(r"\s{2,}", row.strip())
    assert cells == [
        "#3 fix-login", "working", "coder", "release", "$0.40 (p90 $0.90)",
        "$0.12 (6.2k tok)", "run 41 of coder going",
    ]  # fmt: skip
    done = next(line for line in lines if "#1 notes" in line)
    assert "9k tok (p90 12k)" in done and "8.1k tok" in done
    hostile = next(line for line in lines if line.startswith("#4"))
    assert "0 tok" in hostile and "[U+001B]" in hostile and "[U+202E]" in hostile
    assert "\x1b" not in text and "\u202e" not in text
    assert not any(line.startswith("✅") for line in lines)  # its second line stays in its cell
    assert "Missions:" in text
    mission = next(line for line in lines if line.startswith("release"))
    assert "0 of 1 done" in mission and "$0.12 (6.2k tok)" in mission
    assert "Of the ended, the latest 20 of each end are shown." in text


def test_status_tasks_with_none_says_how_to_make_one() -> None:
    """An empty register: the counts and how to make a task, no empty table."""
    text = tasks_text({"counts": {"todo": 0}, "tasks": [], "missions": []})
    assert text == "0 tasks, 0 open\n\nNo tasks yet: task new TITLE makes one in chat."


def test_a_since_without_a_zone_reads_as_utc() -> None:
    """A time the server sent without its zone is taken as UTC, as the API's times are."""
    naive = (SINCE - timedelta(days=1)).replace(tzinfo=None).isoformat()
    text = changes_text({"since": naive, "days": 7, "rows": [], "total": {}})
    assert "since 2026-10-27 09:00 UTC" in text


def test_a_number_where_a_list_belongs_reads_as_nothing() -> None:
    """A server answer with a number or a flag where the tasks, missions or rows belong is
    read as none of them, never a traceback."""
    assert "No tasks yet" in tasks_text({"tasks": 5, "missions": 7, "counts": {}})
    assert "Traceback" not in changes_text({"rows": True, "total": None})
