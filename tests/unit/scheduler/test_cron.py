"""Tests for scheduler.cron: crontab expressions read as crontab(5) reads them, and the
pure questions schedules ask of them (next fire, latest fire, the run to make up)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.cron import CronError, cron_trigger, crontab_weekdays, latest_fire, missed_run
from scheduler.cron import next_fire as next_fire_of

BERLIN = ZoneInfo("Europe/Berlin")
SAT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # a Saturday


def next_fire(expr: str, now: datetime, tz: ZoneInfo | None = None) -> datetime | None:
    return next_fire_of(cron_trigger(expr, tz or ZoneInfo("UTC")), now)


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1", "mon"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0,6", "sun,sat"),
        ("5-7", "fri,sat,sun"),
        ("*/2", "sun,tue,thu,sat"),
        ("1-5/2", "mon,wed,fri"),
        ("0,7", "sun"),
        ("mon-fri", "mon-fri"),
        ("sat,0", "sat,sun"),
    ],
)
def test_weekday_numbers_count_from_sunday_as_in_crontab(field: str, names: str) -> None:
    """Numeric weekdays, ranges and steps become names with 0 and 7 as Sunday; names pass."""
    assert crontab_weekdays(field) == names


@pytest.mark.parametrize("field", ["8", "3-1", "0-9", "*/0"])
def test_impossible_weekdays_are_refused(field: str) -> None:
    """Weekday numbers above 7, backwards ranges and a zero step are refused."""
    with pytest.raises(CronError):
        cron_trigger(f"0 2 * * {field}", UTC)


def test_weekday_1_fires_on_monday() -> None:
    """`0 2 * * 1` fires on Monday (APScheduler 3 alone would read 1 as Tuesday)."""
    fire = next_fire("0 2 * * 1", SAT)
    assert fire == datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
    assert fire is not None and fire.strftime("%A") == "Monday"


def test_weekday_0_and_7_fire_on_sunday() -> None:
    """0 and 7 are both Sunday."""
    sunday = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
    assert next_fire("0 2 * * 0", SAT) == sunday
    assert next_fire("0 2 * * 7", SAT) == sunday


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("0 2 * *", "5 fields"),
        ("0 2 * * * *", "5 fields"),
        ("0", "this one has 1"),
        ("61 * * * *", "61"),
        ("0 25 * * *", "25"),
        ("0 2 1 * mon", "make two schedules"),
        ("nope 2 * * *", "nope"),
    ],
)
def test_bad_expressions_are_refused_with_the_reason(expr: str, problem: str) -> None:
    """Wrong field counts, out-of-range values, both day fields set and junk are refused."""
    with pytest.raises(CronError, match=problem):
        cron_trigger(expr, UTC)


def test_day_of_month_with_a_starred_weekday_is_fine() -> None:
    """A restricted day of month with `*` weekdays is one field restricted: allowed."""
    assert next_fire("0 2 15 * *", SAT) == datetime(2025, 3, 15, 2, 0, tzinfo=UTC)


def test_times_are_read_in_the_given_timezone() -> None:
    """`0 2 * * *` in Berlin is 01:00 UTC in winter and 00:00 UTC in summer."""
    assert next_fire("0 2 * * *", SAT, BERLIN) == datetime(2025, 3, 2, 1, 0, tzinfo=UTC)
    summer = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    assert next_fire("0 2 * * *", summer, BERLIN) == datetime(2025, 7, 2, 0, 0, tzinfo=UTC)


def test_a_date_that_never_comes_has_no_next_fire() -> None:
    """February 31st never fires."""
    assert next_fire("0 0 31 2 *", SAT) is None


def test_latest_fire_is_the_last_time_in_the_window() -> None:
    """latest_fire finds the last fire in (after, now], excluding `after` itself."""
    every_minute = cron_trigger("* * * * *", UTC)
    now = SAT + timedelta(seconds=150)  # 12:02:30
    assert latest_fire(every_minute, SAT, now) == SAT + timedelta(minutes=2)
    assert latest_fire(every_minute, SAT, SAT + timedelta(seconds=30)) is None
    assert latest_fire(every_minute, SAT - timedelta(seconds=1), SAT) == SAT


def test_a_run_missed_within_the_grace_time_is_made_up() -> None:
    """A run due 3 minutes before start, with 5 minutes' grace, is the one to make up."""
    nightly = cron_trigger("0 2 * * *", UTC)
    due = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    start = due + timedelta(minutes=3)
    created = due - timedelta(days=3)
    grace = timedelta(minutes=5)
    assert missed_run(nightly, created_at=created, now=start, grace=grace) == due


def test_a_run_missed_longer_ago_than_the_grace_time_is_not_made_up() -> None:
    """A run due 6 minutes before start is past a 5-minute grace: nothing to make up."""
    nightly = cron_trigger("0 2 * * *", UTC)
    due = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    start = due + timedelta(minutes=6)
    assert (
        missed_run(
            nightly, created_at=due - timedelta(days=1), now=start, grace=timedelta(minutes=5)
        )
        is None
    )


def test_a_run_due_before_the_schedule_existed_is_not_made_up() -> None:
    """A schedule created after its last due time has nothing to make up."""
    nightly = cron_trigger("0 2 * * *", UTC)
    due = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    created = due + timedelta(seconds=30)
    start = due + timedelta(minutes=2)
    assert missed_run(nightly, created_at=created, now=start, grace=timedelta(minutes=5)) is None


def test_several_missed_runs_become_the_latest_one() -> None:
    """Of several runs missed within the grace time, only the latest is made up."""
    every_minute = cron_trigger("* * * * *", UTC)
    start = SAT + timedelta(minutes=4, seconds=10)
    made_up = missed_run(
        every_minute, created_at=SAT - timedelta(days=1), now=start, grace=timedelta(minutes=5)
    )
    assert made_up == SAT + timedelta(minutes=4)
