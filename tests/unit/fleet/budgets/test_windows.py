"""Tests for fleet.budgets.pacing.report_windows: when each report window began."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fleet.budgets.pacing.report_windows import DEFAULT_WINDOW, WINDOWS, day_start, window_start

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def host_in_berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's timezone is Europe/Berlin for the test."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_windows_and_the_default() -> None:
    """The usage command offers these windows; today is the default."""
    assert WINDOWS == ("5h", "today", "7d", "30d")
    assert DEFAULT_WINDOW == "today"


def test_day_start_is_midnight_in_the_given_zone() -> None:
    """Midnight is local: 00:30 in Berlin is still the day before in UTC."""
    now = datetime(2025, 3, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 March in Berlin
    assert day_start(now, BERLIN) == datetime(2025, 3, 1, 23, 0, tzinfo=UTC)
    assert day_start(now, UTC) == datetime(2025, 3, 1, tzinfo=UTC)


def test_day_start_on_a_daylight_saving_day_uses_midnights_offset() -> None:
    """On the day clocks go forward, midnight keeps winter time's offset (+01:00)."""
    noon = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)  # 14:00 CEST
    start = day_start(noon, BERLIN)
    assert start == datetime(2025, 3, 29, 23, 0, tzinfo=UTC)
    assert start.utcoffset() == timedelta(hours=1)


@pytest.mark.usefixtures("host_in_berlin")
def test_day_start_without_a_zone_uses_the_hosts() -> None:
    """No zone means the host's, daylight-saving rules included."""
    noon = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)
    start = day_start(noon)
    assert start == datetime(2025, 3, 29, 23, 0, tzinfo=UTC)
    assert start.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("5h", datetime(2025, 3, 1, 7, 0, tzinfo=UTC)),
        ("today", datetime(2025, 2, 28, 23, 0, tzinfo=UTC)),
        ("7d", datetime(2025, 2, 22, 12, 0, tzinfo=UTC)),
        ("30d", datetime(2025, 1, 30, 12, 0, tzinfo=UTC)),
    ],
)
def test_window_start(window: str, expected: datetime) -> None:
    """5h, 7d and 30d reach back from now; today starts at local midnight; all in the zone."""
    start = window_start(window, datetime(2025, 3, 1, 12, 0, tzinfo=UTC), BERLIN)
    assert start == expected
    assert start.tzinfo is BERLIN


def test_an_unknown_window_is_a_programming_error() -> None:
    """The grammar only lets known windows through; anything else is a ValueError."""
    with pytest.raises(ValueError, match="unknown window '1y'; known: 5h, today, 7d, 30d"):
        window_start("1y", datetime(2025, 3, 1, tzinfo=UTC), UTC)
