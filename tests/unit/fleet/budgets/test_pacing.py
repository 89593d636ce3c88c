"""Tests for fleet.budgets.pacing.law: the pacing law and the learned spend per task."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fleet.budgets.model import BudgetStatus, PaceStatus, Source
from fleet.budgets.pacing.law import (
    MIN_ELAPSED_FRACTION,
    SpendEstimator,
    Spent,
    TaskSpend,
    assess,
    burn_rate,
    catch_up_time,
    elapsed_fraction,
    even_spread,
    fits,
    headroom,
    hours_left,
    pace_ratio,
    pace_status,
    projected_end_use,
    projected_exhaustion,
    prompt_class,
    target_rate,
)
from fleet.ledger.records.budgets import Budget, Scope, WindowKind, WindowSpec

START = datetime(2025, 3, 3, tzinfo=UTC)
END = START + timedelta(days=7)
MID = START + timedelta(days=3, hours=12)
LIMIT = 1_000_000.0
BUDGET = Budget(Scope("global"), WindowSpec(WindowKind.ROLLING, length=timedelta(days=7)))

limits = st.floats(min_value=1.0, max_value=1e12)
fractions = st.floats(min_value=0.0, max_value=1.0)
offsets = st.floats(min_value=-2.0, max_value=2.0)  # of the window's length
windows = st.integers(min_value=60, max_value=90 * 86400)  # seconds


def at(fraction: float, length: timedelta = END - START) -> datetime:
    return START + length * fraction


# --- target rate -----------------------------------------------------------------------


def test_target_rate_spreads_the_remaining_allowance_over_the_remaining_hours() -> None:
    """Half the limit left with half of a 7-day window left: limit/2 over 84 hours."""
    assert target_rate(LIMIT, LIMIT / 2, START, END, MID) == pytest.approx(LIMIT / 2 / 84)


@pytest.mark.parametrize("now", [END, END + timedelta(seconds=1), END + timedelta(days=30)])
def test_target_rate_is_zero_at_and_after_the_end(now: datetime) -> None:
    """No time left is a rate of 0, not a division by zero."""
    assert target_rate(LIMIT, 0.0, START, END, now) == 0.0


def test_target_rate_is_zero_with_nothing_left() -> None:
    """Over the limit the target is 0, never negative."""
    assert target_rate(LIMIT, LIMIT * 1.2, START, END, MID) == 0.0


def test_target_rate_before_the_start_counts_the_whole_window() -> None:
    """A window not yet begun has all of its hours ahead."""
    assert target_rate(LIMIT, 0.0, START, END, START - timedelta(days=1)) == pytest.approx(
        LIMIT / 168
    )


@given(limit=limits, used=fractions, seconds=windows, position=offsets)
def test_target_rate_times_remaining_time_is_the_remaining_allowance(
    limit: float, used: float, seconds: int, position: float
) -> None:
    """target rate × hours left = limit − used, wherever ``now`` is before the end."""
    end = START + timedelta(seconds=seconds)
    now = START + (end - START) * position
    rate = target_rate(limit, used * limit, START, end, now)
    left = hours_left(START, end, now)
    assert math.isfinite(rate) and rate >= 0.0
    if left > 0.0:
        assert rate * left == pytest.approx(limit - used * limit, rel=1e-9, abs=1e-6)
    else:
        assert rate == 0.0


@given(limit=limits, a=fractions, b=fractions, position=st.floats(0.0, 0.999))
def test_target_rate_falls_as_use_grows(limit: float, a: float, b: float, position: float) -> None:
    """Spending more never raises the rate still allowed."""
    now = at(position)
    low, high = sorted((a * limit, b * limit))
    assert target_rate(limit, high, START, END, now) <= target_rate(limit, low, START, END, now)


# --- pace ratio ------------------------------------------------------------------------------


def test_pace_ratio_on_the_even_spread_line_is_one() -> None:
    """Half the window gone and half the limit used is exactly on pace."""
    assert pace_ratio(LIMIT, LIMIT / 2, START, END, MID) == pytest.approx(1.0)


@given(limit=limits, fraction=st.floats(MIN_ELAPSED_FRACTION, 1.0), seconds=windows)
def test_pace_ratio_is_one_anywhere_on_the_line(
    limit: float, fraction: float, seconds: int
) -> None:
    """Using what the line says at any point past the minimum is a ratio of 1."""
    end = START + timedelta(seconds=seconds)
    now = START + (end - START) * fraction
    on_line = even_spread(limit, START, end, now)
    assume(on_line >= limit * MIN_ELAPSED_FRACTION)
    assert pace_ratio(limit, on_line, START, end, now) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("now", [START, START - timedelta(hours=1), START + timedelta(seconds=1)])
def test_pace_ratio_at_the_start_uses_the_minimum_elapsed_fraction(now: datetime) -> None:
    """At the very start the line counts as 1 % of the limit: finite, and 1 % is on pace."""
    assert pace_ratio(LIMIT, 0.0, START, END, now) == 0.0
    assert pace_ratio(LIMIT, LIMIT * MIN_ELAPSED_FRACTION, START, END, now) == pytest.approx(1.0)


def test_pace_ratio_after_the_end_is_use_over_the_limit() -> None:
    """Once the window is over, the line is the whole limit."""
    assert pace_ratio(LIMIT, LIMIT * 0.8, START, END, END + timedelta(days=1)) == pytest.approx(0.8)


@given(limit=limits, used=fractions, p=fractions, q=fractions)
def test_pace_ratio_falls_as_time_passes(limit: float, used: float, p: float, q: float) -> None:
    """The same use is a lower (or equal) ratio later in the window."""
    early, late = sorted((p, q))
    ratio_early = pace_ratio(limit, used * limit, START, END, at(early))
    assert pace_ratio(limit, used * limit, START, END, at(late)) <= ratio_early * (1 + 1e-12)


@given(limit=limits, a=fractions, b=fractions, p=offsets)
def test_pace_ratio_grows_with_use(limit: float, a: float, b: float, p: float) -> None:
    """More use at the same moment is a higher (or equal) ratio, always finite."""
    low, high = sorted((a * limit, b * limit))
    r_low = pace_ratio(limit, low, START, END, at(p))
    r_high = pace_ratio(limit, high, START, END, at(p))
    assert math.isfinite(r_high) and r_low <= r_high


# --- projections ---------------------------------------------------------------------------


def test_projected_end_use_adds_the_burn_over_the_hours_left() -> None:
    """1,000 an hour for the last 84 hours adds 84,000."""
    assert projected_end_use(100.0, 1000.0, END, MID) == pytest.approx(84_100.0)
    assert projected_end_use(100.0, 1000.0, END, END + timedelta(hours=1)) == 100.0


def test_projected_exhaustion_at_the_current_rate() -> None:
    """10,000 left at 1,000 an hour runs out in 10 hours."""
    assert projected_exhaustion(LIMIT, LIMIT - 10_000, 1000.0, END, MID) == MID + timedelta(
        hours=10
    )


def test_projected_exhaustion_is_none_when_it_would_come_after_the_end() -> None:
    """Running out after the reset is not running out."""
    assert projected_exhaustion(LIMIT, 0.0, 1000.0, END, MID) is None
    assert projected_exhaustion(LIMIT, 0.0, 0.0, END, MID) is None
    assert projected_exhaustion(LIMIT, 0.0, 1e-300, END, MID) is None  # no overflow
    assert projected_exhaustion(LIMIT, 0.0, 1e9, END, END) is None


def test_projected_exhaustion_is_now_when_already_exhausted() -> None:
    """At or over the limit, it has run out already."""
    assert projected_exhaustion(LIMIT, LIMIT, 0.0, END, MID) == MID


@given(limit=limits, used=st.floats(0.0, 0.999), rate=st.floats(0.0, 1e12), p=st.floats(0.0, 0.99))
def test_projected_exhaustion_agrees_with_projected_end_use(
    limit: float, used: float, rate: float, p: float
) -> None:
    """Exhaustion comes before the end exactly when the end use projects past the limit."""
    now = at(p)
    end_use = projected_end_use(used * limit, rate, END, now)
    assume(abs(end_use - limit) > 1e-6 * limit)
    out = projected_exhaustion(limit, used * limit, rate, END, now)
    assert (out is not None) == (end_use > limit)
    if out is not None:
        assert now <= out < END


# --- status, catch-up, burn ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "used", "expected"),
    [
        (0.5, 10.0, PaceStatus.UNDER),
        (0.9, 10.0, PaceStatus.ON),
        (1.1, 10.0, PaceStatus.ON),
        (1.11, 10.0, PaceStatus.OVER),
        (0.5, LIMIT, PaceStatus.EXHAUSTED),
    ],
)
def test_pace_status_against_the_tolerance(ratio: float, used: float, expected: PaceStatus) -> None:
    """Within ±10 % is on pace; the limit is exhausted whatever the ratio."""
    assert pace_status(ratio, used, LIMIT, 0.1) is expected


def test_catch_up_time_is_when_the_line_reaches_use() -> None:
    """Half the limit is caught up with half-way through; clamped at both ends."""
    assert catch_up_time(LIMIT, LIMIT / 2, START, END) == MID
    assert catch_up_time(LIMIT, 0.0, START, END) == START
    assert catch_up_time(LIMIT, 2 * LIMIT, START, END) == END


def test_elapsed_fraction_is_clamped() -> None:
    """Before the start is 0, after the end is 1."""
    assert elapsed_fraction(START, END, START - timedelta(days=1)) == 0.0
    assert elapsed_fraction(START, END, END + timedelta(days=1)) == 1.0


def test_burn_rate_from_cumulative_use() -> None:
    """Use rising from 1,000 to 4,000 over the last 30 minutes is 6,000 an hour."""
    series = [
        (MID - timedelta(hours=1), 500.0),
        (MID - timedelta(minutes=30), 1000.0),
        (MID - timedelta(minutes=10), 3000.0),
        (MID, 4000.0),
        (MID + timedelta(minutes=5), 9000.0),  # after now: not counted
    ]
    assert burn_rate(series, MID, timedelta(minutes=30)) == pytest.approx(6000.0)
    assert burn_rate([], MID, timedelta(minutes=30)) == 0.0
    with pytest.raises(ValueError, match="span"):
        burn_rate(series, MID, timedelta(0))


@pytest.mark.parametrize(
    "call",
    [
        lambda: target_rate(0.0, 0.0, START, END, MID),
        lambda: pace_ratio(-1.0, 0.0, START, END, MID),
        lambda: pace_ratio(LIMIT, 0.0, END, START, MID),
        lambda: hours_left(START, START, MID),
    ],
    ids=["zero-limit", "negative-limit", "inverted-window", "empty-window"],
)
def test_a_zero_limit_or_empty_window_is_a_value_error(call: object) -> None:
    """Bad input is refused rather than divided by."""
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


def test_assess_bundles_the_law_into_a_status() -> None:
    """A budget 20 % over the line, burning fast, reads as over pace and running out."""
    status = assess(
        BUDGET,
        start=START,
        end=END,
        now=MID,
        spent=Spent(used=LIMIT * 0.6, limit=LIMIT, unit="tokens", burn_rate=20_000.0),
        source=Source.METERING,
    )
    assert status.pace_ratio == pytest.approx(1.2)
    assert status.status is PaceStatus.OVER
    assert status.target_rate == pytest.approx(LIMIT * 0.4 / 84)
    assert status.projected_end_use == pytest.approx(LIMIT * 0.6 + 20_000 * 84)
    assert status.projected_exhaustion == MID + timedelta(hours=20)
    assert status.source is Source.METERING


# --- fitting a launch ------------------------------------------------------------------------


def status_at(used: float, now: datetime = MID) -> BudgetStatus:
    return assess(
        BUDGET,
        start=START,
        end=END,
        now=now,
        spent=Spent(used=used, limit=LIMIT, unit="tokens", burn_rate=0.0),
        source=Source.METERING,
    )


def test_headroom_at_the_start_uses_the_minimum_line() -> None:
    """At the start the line counts as 1 % of the limit, so a small launch still fits."""
    assert headroom(status_at(0.0, START)) == pytest.approx(LIMIT * MIN_ELAPSED_FRACTION * 1.1)


def test_headroom_reaches_the_top_of_the_tolerance() -> None:
    """On the line half-way, 10 % of the line's 500,000 is left to spend on pace."""
    status = status_at(LIMIT / 2)
    assert headroom(status) == pytest.approx(50_000.0)
    assert fits(50_000.0, status)
    assert not fits(50_001.0, status)


def test_headroom_never_goes_past_the_limit() -> None:
    """Near the end the tolerance above the line is capped at the limit."""
    assert headroom(status_at(LIMIT * 0.99, END - timedelta(hours=1))) == pytest.approx(
        LIMIT * 0.01
    )


def test_nothing_fits_an_exhausted_budget() -> None:
    """At the limit not even a free launch fits."""
    status = status_at(LIMIT)
    assert headroom(status) == 0.0
    assert not fits(0.0, status)


# --- learned spend per task ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Fix the login bug", "short:fix"),
        ("  ## Review PR 42 please", "short:review"),
        ("refactor " * 30, "medium:refactor"),
        ("x" * 2500, "long:" + "x" * 24),
        ("", "short:-"),
        ("123 !!!", "short:-"),
    ],
)
def test_prompt_class_is_a_length_bucket_and_the_first_word(prompt: str, expected: str) -> None:
    """Coarse classes: similar asks land in the same one."""
    assert prompt_class(prompt) == expected


def rows(runtime: str, model: str | None, cls: str, *tokens: float) -> list[TaskSpend]:
    return [TaskSpend(runtime, model, cls, t) for t in tokens]


def test_estimator_uses_the_exact_key_with_enough_runs() -> None:
    """Three runs of the same kind: their median, not the others'."""
    history = rows("claude", "opus", "short:fix", 100, 300, 200) + rows(
        "claude", "opus", "long:refactor", 9000, 9000, 9000
    )
    assert SpendEstimator(history).expected("claude", "opus", "short:fix") == 200


def test_estimator_falls_back_from_a_thin_key_to_runtime_and_model() -> None:
    """With fewer than three runs of the kind, the runtime + model median decides."""
    history = rows("claude", "opus", "short:fix", 100, 100) + rows(
        "claude", "opus", "long:refactor", 5000, 5000, 5000
    )
    assert SpendEstimator(history).expected("claude", "opus", "short:fix") == 5000


def test_estimator_falls_back_to_runtime_then_everything() -> None:
    """An unseen model uses the runtime's median; an unseen runtime everyone's."""
    history = rows("claude", "opus", "a", 10, 20, 30) + rows("codex", "gpt-5", "a", 1000)
    estimator = SpendEstimator(history)
    assert estimator.expected("claude", "haiku", "a") == 20
    assert estimator.expected("gemini", None, "a") == 25  # median of 10, 20, 30, 1000


def test_estimator_without_history_knows_nothing() -> None:
    """No runs at all: no estimate, rather than a made-up one."""
    assert SpendEstimator([]).expected("claude", "opus", "short:fix") is None
