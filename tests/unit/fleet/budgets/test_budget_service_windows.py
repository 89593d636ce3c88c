"""The budget service over its windows: a fixed one from when it was first seen or its reset, a
rolling one anchored at its reset, a calendar reset, and the next reset ahead."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fleet.ledger import Ledger
from fleet.ledger.records.budgets import (
    Budget,
    Confidence,
    Scope,
    WindowKind,
    WindowSpec,
)
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0
from tests.unit.fleet.budgets.test_budget_service import (
    ADMIN,
    DAY,
    FIVE_HOURS,
    HOUR,
    book,
    record,
    rolling,
    use,
)
from tests.unit.fleet.budgets.test_budget_service import (
    sqlite_ledger as sqlite_ledger,  # a fixture of this module too
)

# --- windows -------------------------------------------------------------------------------------


async def test_a_fixed_window_without_a_length_runs_from_when_first_seen(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """A fixed window with only a reset_at begins when the service first sees it: usage
    before that does not count, and the start stays put as time goes on."""
    reset = T0 + 10 * HOUR
    budget = Budget(
        Scope("global"), WindowSpec(WindowKind.FIXED, reset_at=reset), limit_tokens=1_000_000
    )
    await record(sqlite_ledger, [use("coder-1", T0 - HOUR, 500_000)])
    service = await book(sqlite_ledger, clock, budget)
    await record(sqlite_ledger, [use("coder-1", T0 + timedelta(minutes=30), 100_000)])
    clock.advance(3600)
    [status] = await service.statuses()
    assert (status.start, status.end, status.now) == (T0, reset, T0 + HOUR)
    assert (status.used, status.pace_ratio) == (100_000.0, 1.0)
    assert status.reset_confidence is Confidence.USER  # the reset_at the user gave
    assert service.next_reset() == reset


async def test_a_fixed_window_first_seen_after_its_reset_does_not_stop_the_service(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """A fixed budget set by command whose reset has passed by the time Fleetwarden starts
    again is still assessed (a window over, no reset known), instead of failing start()."""
    reset = T0 + HOUR
    budget = Budget(
        Scope("global"),
        WindowSpec(WindowKind.FIXED, reset_at=reset),
        limit_tokens=1_000_000,
        source="command",
    )
    first = await book(sqlite_ledger, clock)
    await first.set_budget(budget, ADMIN)
    clock.advance(2 * 3600)
    later = await book(sqlite_ledger, clock)
    [status] = await later.statuses()
    assert status.end == reset < status.now
    assert status.reset_confidence is Confidence.UNKNOWN
    assert status.start < status.end
    assert later.next_reset() is None


@pytest.mark.parametrize(
    ("reset_at", "now", "window"),
    [
        # A reset ahead: the current window ends there.
        (T0 + 2 * HOUR, T0, (T0 - 3 * HOUR, T0 + 2 * HOUR)),
        # Once it has passed, windows follow every length after it.
        (T0 + 2 * HOUR, T0 + 3 * HOUR, (T0 + 2 * HOUR, T0 + 7 * HOUR)),
        (T0 + 2 * HOUR, T0 + 7 * HOUR, (T0 + 7 * HOUR, T0 + 12 * HOUR)),
        # A past anchor repeats too: 01:00, 06:00, 11:00, 16:00.
        (T0 - 11 * HOUR, T0, (T0 - HOUR, T0 + 4 * HOUR)),
    ],
)
async def test_a_rolling_window_with_a_reset_at_is_anchored_there(
    sqlite_ledger: Ledger,
    clock: ManualClock,
    reset_at: datetime,
    now: datetime,
    window: tuple[datetime, datetime],
) -> None:
    """A rolling window's reset_at is one of its ends; the others are whole lengths away,
    each as sure as the user said (here: copied from the provider)."""
    spec = WindowSpec(WindowKind.ROLLING, FIVE_HOURS, reset_at, Confidence.PROVIDER)
    service = await book(sqlite_ledger, clock, Budget(Scope("global"), spec, limit_tokens=1000))
    clock.advance((now - T0).total_seconds())
    [status] = await service.statuses()
    assert (status.start, status.end) == window
    assert status.reset_confidence is Confidence.PROVIDER
    assert service.next_reset() == window[1]


async def test_a_calendar_reset_and_a_bare_rolling_one_of_our_own_are_the_users(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """A daily window the user chose resets at a midnight they set; a 5 h window nobody
    placed is laid from the epoch by us, and enforced where it is laid: the config's
    window; a declared confidence is kept."""
    calendar = Budget(Scope("global"), WindowSpec(WindowKind.DAILY), limit_tokens=1000)
    bare = rolling("group:team", FIVE_HOURS)
    unsure = Budget(
        Scope("agent", "coder-1"),
        WindowSpec(WindowKind.WEEKLY, confidence=Confidence.UNKNOWN),
        limit_tokens=1000,
    )
    service = await book(sqlite_ledger, clock, calendar, bare, unsure)
    assert {s.budget.key: s.reset_confidence for s in await service.statuses()} == {
        "global": Confidence.USER,
        "group:team": Confidence.USER,
        "agent:coder-1": Confidence.UNKNOWN,
    }


async def test_next_reset_is_the_earliest_window_end_ahead(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """next_reset is the soonest end among every budget's current window (a calendar day
    ends at midnight in the configured zone), and None without budgets."""
    paris = ZoneInfo("Europe/Paris")  # UTC+1 in March: midnight is 23:00 UTC
    calendar = Budget(Scope("global"), WindowSpec(WindowKind.DAILY), limit_tokens=1000)
    anchored = Budget(
        Scope("group", "team"),
        WindowSpec(WindowKind.ROLLING, length=FIVE_HOURS, reset_at=T0 + 2 * HOUR),
        limit_tokens=1000,
    )
    fixed = Budget(
        Scope("agent", "coder-1"),
        WindowSpec(WindowKind.FIXED, reset_at=T0 + 10 * HOUR),
        limit_tokens=1000,
    )
    service = await book(sqlite_ledger, clock, calendar, anchored, fixed, tz=paris)
    assert service.next_reset() == T0 + 2 * HOUR
    clock.advance(2 * 3600)  # the anchored window rolls over to end at 19:00
    assert service.next_reset() == T0 + 7 * HOUR
    clock.advance(6 * 3600)
    assert service.next_reset() == T0 + 10 * HOUR
    clock.advance(2 * 3600)  # the fixed window is over; Paris' midnight is next
    assert service.next_reset() == DAY + 23 * HOUR
    assert (await book(sqlite_ledger, clock)).next_reset() is None
