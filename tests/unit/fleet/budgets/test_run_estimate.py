"""What a run usually costs: median and p90 of known runs, and the share of a budget's
allowance today."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fleet.budgets.model import Source
from fleet.budgets.pacing.law import Spent, assess
from fleet.budgets.runs.estimate import (
    NO_HISTORY,
    RunEstimate,
    allowance_today,
    estimate_runs,
    estimate_text,
    percentiles,
)
from fleet.ledger.records.budgets import Budget, Scope, WindowKind, WindowSpec
from tests.unit.chat_fakes import T0


def status(window: timedelta, limit: float, *, usd: bool = False):  # type: ignore[no-untyped-def]
    spec = WindowSpec(WindowKind.ROLLING, window)
    budget = Budget(
        Scope("agent", "a"),
        spec,
        limit_tokens=None if usd else int(limit),
        limit_usd=limit if usd else None,
    )
    return assess(
        budget,
        start=T0,
        end=T0 + window,
        now=T0 + timedelta(hours=1),
        spent=Spent(used=0.0, limit=limit, unit="usd" if usd else "tokens", burn_rate=0.0),
        source=Source.METERING,
    )


def test_median_and_p90_of_known_runs() -> None:
    """Ten runs 10..100: median 55, p90 91 (inclusive method); one run is both."""
    assert percentiles([float(v) for v in range(10, 101, 10)]) == (55.0, 91.0)
    assert percentiles([30_000.0, 30_000.0]) == (30_000.0, 30_000.0)
    assert percentiles([100.0, 200.0]) == (150.0, 190.0)
    assert percentiles([7.0]) == (7.0, 7.0)
    with pytest.raises(ValueError):
        percentiles([])


def test_dollars_are_estimated_from_the_priced_runs_only() -> None:
    """Unpriced runs count for tokens, not dollars; no priced run leaves dollars unknown."""
    estimate = estimate_runs([(1000, 0.25), (3000, None), (2000, 0.75)])
    assert estimate == RunEstimate(3, (2000.0, 2800.0), (0.5, 0.7), 2)
    assert estimate_runs([(1000, None)]) == RunEstimate(1, (1000.0, 1000.0), None, 0)
    assert estimate_runs([]) is None


def test_today_s_allowance_is_a_day_of_a_long_window_or_a_whole_short_one() -> None:
    """7M a week allows 1M today; a 5h window allows its limit per window."""
    assert allowance_today(status(timedelta(days=7), 7_000_000)) == (1_000_000.0, "today")
    assert allowance_today(status(timedelta(hours=5), 500_000)) == (500_000.0, "a 5h window")
    assert allowance_today(status(timedelta(days=1), 10.0, usd=True)) == (10.0, "a 1d window")


def test_the_estimate_line() -> None:
    """No history says so; else median and p90 with dollars, and their share of the
    governing budget's allowance in its unit."""
    assert NO_HISTORY in estimate_text(None, "claude", "m-1", None)
    estimate = estimate_runs([(20_000, 0.5), (40_000, 1.5)])
    text = estimate_text(estimate, "claude", "m-1", status(timedelta(days=7), 7_000_000))
    assert text == (
        "Usual cost of a run on claude (m-1): median 30,000 tokens ($1.00), p90 38,000 "
        "tokens ($1.40), from 2 past runs. That is 3.0% (p90 3.8%) of agent:a's allowance "
        "for today (1,000,000 tokens)."
    )
    dollars = estimate_text(estimate, "claude", None, status(timedelta(days=1), 4.0, usd=True))
    assert "its default model" in dollars
    assert "25% (p90 35%) of agent:a's allowance for a 1d window ($4.00)" in dollars
    unpriced = estimate_text(
        estimate_runs([(100, None)]), "claude", "m", status(timedelta(days=1), 4.0, usd=True)
    )
    assert "is in dollars and these runs had no price" in unpriced
