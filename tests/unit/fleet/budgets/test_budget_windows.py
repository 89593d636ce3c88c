"""Tests for fleet.budgets.pacing.windows: where each kind of budget window begins and ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.budgets.pacing.windows import EPOCH, window_bounds
from fleet.ledger.records.budgets import WindowKind, WindowSpec

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DAILY = WindowSpec(WindowKind.DAILY)
WEEKLY = WindowSpec(WindowKind.WEEKLY)
MONTHLY = WindowSpec(WindowKind.MONTHLY)
ZONES = [
    ZoneInfo(name)
    for name in (
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Sydney",
        "Asia/Kolkata",
        "America/Santiago",
    )
]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def rolling(length: timedelta) -> WindowSpec:
    return WindowSpec(WindowKind.ROLLING, length=length)


# --- rolling -------------------------------------------------------------------------------


def test_rolling_without_an_anchor_is_anchored_at_the_epoch() -> None:
    """Five-hour windows repeat from 1970-01-01 00:00 UTC, so boundaries never move."""
    now = utc(2025, 3, 1, 12, 30)
    start, end = window_bounds(rolling(timedelta(hours=5)), now, BERLIN)
    assert (start - EPOCH) % timedelta(hours=5) == timedelta(0)
    assert start <= now < end
    assert end - start == timedelta(hours=5)
    assert (start, end) == (utc(2025, 3, 1, 8), utc(2025, 3, 1, 13))


def test_rolling_windows_repeat_back_to_back_from_the_anchor() -> None:
    """A 7-day budget begun on 1 March at 10:00 is in its second window on 10 March."""
    anchor = utc(2025, 3, 1, 10)
    start, end = window_bounds(
        rolling(timedelta(days=7)), utc(2025, 3, 10), UTC_ZONE, anchor=anchor
    )
    assert (start, end) == (utc(2025, 3, 8, 10), utc(2025, 3, 15, 10))


def test_rolling_window_boundary_belongs_to_the_new_window() -> None:
    """At the exact reset instant the next window has begun."""
    anchor = utc(2025, 3, 1, 10)
    start, _ = window_bounds(
        rolling(timedelta(hours=5)), utc(2025, 3, 1, 15), UTC_ZONE, anchor=anchor
    )
    assert start == utc(2025, 3, 1, 15)


def test_rolling_before_the_anchor_stays_on_the_same_grid() -> None:
    """A time before the anchor falls in a window of the same back-to-back grid."""
    anchor = utc(2025, 3, 1, 10)
    start, end = window_bounds(
        rolling(timedelta(hours=5)), utc(2025, 3, 1, 6), UTC_ZONE, anchor=anchor
    )
    assert (start, end) == (utc(2025, 3, 1, 5), utc(2025, 3, 1, 10))


@given(
    now=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    anchor=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=1, max_value=60 * 24 * 60),
)
def test_rolling_bounds_hold_now_and_sit_on_the_anchors_grid(
    now: datetime, anchor: datetime, minutes: int
) -> None:
    """A rolling window holds ``now``, lasts its length, and sits on the anchor's grid."""
    length = timedelta(minutes=minutes)
    start, end = window_bounds(rolling(length), now, UTC_ZONE, anchor=anchor)
    assert start <= now < end
    assert end - start == length
    assert (start - anchor) % length == timedelta(0)


@pytest.mark.parametrize(
    "spec",
    [
        WindowSpec(WindowKind.ROLLING),
        rolling(timedelta(0)),
        WindowSpec(WindowKind.FIXED, reset_at=utc(2025, 3, 2)),
        WindowSpec(WindowKind.FIXED, length=timedelta(days=7)),
        WindowSpec(WindowKind.FIXED, length=timedelta(days=7), reset_at=datetime(2025, 3, 2)),
    ],
    ids=["rolling-no-length", "rolling-zero", "fixed-no-length", "fixed-no-reset", "naive-reset"],
)
def test_incomplete_specs_are_refused(spec: WindowSpec) -> None:
    """A window missing what its kind needs is a ValueError, not a guess."""
    with pytest.raises(ValueError, match="window"):
        window_bounds(spec, utc(2025, 3, 1), UTC_ZONE)


def test_naive_now_and_anchor_are_refused() -> None:
    """Naive datetimes are refused: a window's bounds are instants."""
    with pytest.raises(ValueError, match="aware"):
        window_bounds(DAILY, datetime(2025, 3, 1), UTC_ZONE)
    with pytest.raises(ValueError, match="aware"):
        window_bounds(
            rolling(timedelta(hours=5)), utc(2025, 3, 1), UTC_ZONE, anchor=datetime(2025, 3, 1)
        )


# --- calendar ------------------------------------------------------------------------------


def test_daily_runs_midnight_to_midnight_local_time() -> None:
    """00:30 in Berlin (23:30 UTC the day before) is in the Berlin day that just began."""
    start, end = window_bounds(DAILY, utc(2025, 3, 1, 23, 30), BERLIN)
    assert (start, end) == (utc(2025, 3, 1, 23), utc(2025, 3, 2, 23))
    assert start.tzinfo is UTC and end.tzinfo is UTC


def test_daily_on_the_spring_forward_day_lasts_23_hours() -> None:
    """30 March 2025 in Berlin: from midnight at +01:00 to midnight at +02:00."""
    start, end = window_bounds(DAILY, utc(2025, 3, 30, 12), BERLIN)
    assert (start, end) == (utc(2025, 3, 29, 23), utc(2025, 3, 30, 22))
    assert end - start == timedelta(hours=23)


def test_daily_on_the_fall_back_day_lasts_25_hours() -> None:
    """2 November 2025 in New York: 25 hours, midnight to midnight."""
    start, end = window_bounds(DAILY, utc(2025, 11, 2, 12), NEW_YORK)
    assert (start, end) == (utc(2025, 11, 2, 4), utc(2025, 11, 3, 5))
    assert end - start == timedelta(hours=25)


def test_daily_where_the_clocks_skip_midnight_starts_at_the_jump() -> None:
    """Santiago skips 00:00–01:00 on 7 September 2025: that day begins at 01:00 local."""
    start, end = window_bounds(DAILY, utc(2025, 9, 7, 15), ZoneInfo("America/Santiago"))
    assert start == utc(2025, 9, 7, 4)  # 00:00 at -04:00 is the instant of the jump
    assert start.astimezone(ZoneInfo("America/Santiago")).hour == 1
    assert end - start == timedelta(hours=23)


def test_weekly_starts_on_monday_midnight_local_time() -> None:
    """The week holding Sunday 30 March (Berlin) spans a DST change: 167 hours."""
    start, end = window_bounds(WEEKLY, utc(2025, 3, 30, 12), BERLIN)
    assert (start, end) == (utc(2025, 3, 23, 23), utc(2025, 3, 30, 22))
    assert start.astimezone(BERLIN).weekday() == 0
    assert end - start == timedelta(hours=167)


def test_weekly_monday_just_after_midnight_is_a_new_week() -> None:
    """00:30 on a Monday in Berlin is already the new week."""
    start, _ = window_bounds(WEEKLY, utc(2025, 3, 30, 22, 30), BERLIN)
    assert start == utc(2025, 3, 30, 22)


@pytest.mark.parametrize(
    ("now", "tz", "expected"),
    [
        (utc(2025, 1, 31, 12), UTC_ZONE, (utc(2025, 1, 1), utc(2025, 2, 1))),
        (utc(2024, 2, 29, 12), UTC_ZONE, (utc(2024, 2, 1), utc(2024, 3, 1))),
        (utc(2025, 12, 31, 23), UTC_ZONE, (utc(2025, 12, 1), utc(2026, 1, 1))),
        (utc(2025, 12, 31, 23), BERLIN, (utc(2025, 12, 31, 23), utc(2026, 1, 31, 23))),
        (utc(2025, 3, 15), BERLIN, (utc(2025, 2, 28, 23), utc(2025, 3, 31, 22))),
    ],
    ids=["january", "leap-february", "december", "new-year-in-berlin", "march-with-dst"],
)
def test_monthly_runs_from_the_first_to_the_first(
    now: datetime, tz: ZoneInfo, expected: tuple[datetime, datetime]
) -> None:
    """Months of every length, the year's end and a DST change, in local time."""
    assert window_bounds(MONTHLY, now, tz) == expected


@given(
    now=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    tz=st.sampled_from(ZONES),
    spec=st.sampled_from([DAILY, WEEKLY, MONTHLY]),
)
def test_calendar_bounds_hold_now_and_start_on_the_local_day(
    now: datetime, tz: ZoneInfo, spec: WindowSpec
) -> None:
    """Any calendar window holds ``now``, in UTC, and starts on the local date it names."""
    start, end = window_bounds(spec, now, tz)
    assert start <= now < end
    assert start.tzinfo is UTC
    first = start.astimezone(tz)
    assert first.hour in (0, 1) and first.minute == 0  # 1: where midnight was skipped
    local = now.astimezone(tz).date()
    if spec is DAILY:
        assert first.date() == local
    elif spec is WEEKLY:
        assert first.weekday() == 0 and 0 <= (local - first.date()).days < 7
    else:
        assert (first.year, first.month, first.day) == (local.year, local.month, 1)


# --- fixed ---------------------------------------------------------------------------------


def test_fixed_window_ends_at_reset_and_began_a_length_before() -> None:
    """A provider's 7-day reset at Sunday 18:00 began the Sunday before."""
    spec = WindowSpec(WindowKind.FIXED, length=timedelta(days=7), reset_at=utc(2025, 3, 9, 18))
    assert window_bounds(spec, utc(2025, 3, 5), BERLIN) == (
        utc(2025, 3, 2, 18),
        utc(2025, 3, 9, 18),
    )


def test_fixed_window_does_not_repeat_after_its_reset() -> None:
    """Past reset_at the same bounds come back: ``now`` is past the end until a new reset."""
    spec = WindowSpec(WindowKind.FIXED, length=timedelta(hours=5), reset_at=utc(2025, 3, 9, 18))
    _, end = window_bounds(spec, utc(2025, 3, 9, 20), UTC_ZONE)
    assert end == utc(2025, 3, 9, 18)
