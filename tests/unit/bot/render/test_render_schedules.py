"""Tests for the schedule renderers in bot.render.work.schedules: pure records in, markdown out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from bot.render.work import schedules as render
from fleet.ledger import ScheduleRecord
from tests.unit.chat_fakes import T0

BERLIN = ZoneInfo("Europe/Berlin")
RECORD = ScheduleRecord(
    id=3,
    cron="0 2 * * *",
    command='spawn reviewer --prompt "review"',
    created_by="@ann:example.org",
    connector="matrix",
    room="!r:example.org",
    created_at=T0 - timedelta(days=2),
    last_run_at=None,
    last_outcome=None,
    last_detail=None,
)


def test_no_schedules_says_how_to_add_one() -> None:
    """An empty list explains `schedule add` with an example."""
    text = render.schedules([], {}, T0, UTC)
    assert 'schedule add "CRON" COMMAND' in text


def test_the_list_shows_every_column_in_the_timezone() -> None:
    """id, cron, command, creator, next run (local time and how far off), last run."""
    upcoming = T0 + timedelta(hours=14)  # 2025-03-02 02:00 UTC, 03:00 in Berlin
    text = render.schedules([RECORD], {3: upcoming}, T0, BERLIN)
    assert "| id | cron | command | created by | next run | last run |" in text
    row = (
        '| 3 | `0 2 * * *` | `spawn reviewer --prompt "review"` | @ann:example.org '
        "| 2025-03-02 03:00 (in 14h00m) | never |"
    )
    assert row in text
    assert text.endswith("Times are in Europe/Berlin.")


def test_an_unregistered_schedule_shows_no_next_run() -> None:
    """A schedule without a job (its expression could not be scheduled) shows a dash."""
    text = render.schedules([RECORD], {}, T0, UTC)
    assert "| @ann:example.org | – | never |" in text


def test_the_last_run_shows_its_outcome_and_why_it_was_not_ok() -> None:
    """An ok run shows its time and `ok`; a refused one adds the reason, cut to fit."""
    ok = replace(RECORD, last_run_at=T0, last_outcome="ok", last_detail=None)
    assert "| 2025-03-01 12:00 ok |" in render.schedules([ok], {}, T0, UTC)
    denied = replace(ok, last_outcome="denied", last_detail="not run: " + "x" * 200)
    text = render.schedules([denied], {}, T0, UTC)
    assert "2025-03-01 12:00 denied: not run: xxx" in text
    assert "x" * 100 not in text and "…" in text


def test_backticks_in_a_command_cannot_break_out_of_its_code_span() -> None:
    """A command with backticks is shown without them."""
    sneaky = replace(RECORD, command="send coder-1 run `rm -rf`")
    assert "`send coder-1 run rm -rf`" in render.schedules([sneaky], {}, T0, UTC)


def test_added_and_removed_and_the_run_heading() -> None:
    """The answers to add and remove, and the line above a scheduled run's reply."""
    added = render.schedule_added(RECORD, T0 + timedelta(hours=14), UTC)
    assert added.startswith("Schedule **3** added: `spawn reviewer")
    assert "Next run: 2025-03-02 02:00 UTC." in added
    assert "no longer runs" in render.schedule_removed(RECORD)
    assert render.schedule_heading(RECORD) == (
        "Schedule **3** (`0 2 * * *`, set up by @ann:example.org) ran "
        '`spawn reviewer --prompt "review"`:'
    )
