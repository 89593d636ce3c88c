"""The issue's pacing targets, on a simulated week (bench/pacing_sim.py): 10 agents with
bursty demand of 1.6 × the limit, the real law and PacingPolicy on an injected clock."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bench.pacing_sim import (
    BUDGET,
    DAYS,
    DEMAND_RATIO,
    LIMIT,
    START,
    Demand,
    Outcome,
    Strategy,
    make_demand,
    plot,
    simulate,
)

EVEN_DAY = LIMIT / DAYS
SEEDS = [1, 2]


@functools.cache
def week(seed: int) -> Demand:
    """The demand of ``seed``, made once per test session."""
    return make_demand(seed)


@functools.cache
def run(seed: int, strategy: Strategy) -> Outcome:
    """``strategy`` on the week of ``seed``, simulated once per test session."""
    return simulate(week(seed), strategy)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_demand_exceeds_the_limit(seed: int) -> None:
    """The week asks for 1.6 × the limit, or pacing would have nothing to do."""
    total = sum(sum(steps) for steps in week(seed).steps.values())
    assert total == pytest.approx(DEMAND_RATIO * LIMIT)


@pytest.mark.parametrize("seed", SEEDS)
def test_paced_the_window_ends_near_the_limit_and_never_runs_dry(seed: int) -> None:
    """Paced: 97–100 % used at the reset, never exhausted, each day within ±15 % of even."""
    paced = run(seed, "paced")
    assert 0.97 <= paced.final <= 1.0
    assert paced.exhausted_at is None
    assert paced.verdicts["Refuse"] == 0
    assert paced.verdicts["Rewrite"] > 0 and paced.verdicts["Hold"] > 0  # the ladder was used
    for day, used in enumerate(paced.daily(), 1):
        assert abs(used / EVEN_DAY - 1) <= 0.15, f"day {day}: {used / EVEN_DAY:.1%} of even"


@pytest.mark.parametrize("seed", SEEDS)
def test_first_come_first_served_runs_dry_early(seed: int) -> None:
    """The same demand without pacing exhausts the window days before the reset."""
    fcfs = run(seed, "fcfs")
    assert fcfs.exhausted_at is not None
    assert fcfs.exhausted_at < START + timedelta(days=DAYS - 2)
    assert fcfs.daily()[-1] == 0.0


def test_the_queue_alone_also_meets_the_targets() -> None:
    """With no model ladder, holding requests alone keeps the window on its line."""
    paced = simulate(week(1), "paced", replace(BUDGET, ladder={}))
    assert 0.97 <= paced.final <= 1.0
    assert paced.exhausted_at is None
    assert max(abs(used / EVEN_DAY - 1) for used in paced.daily()) <= 0.15
    assert paced.verdicts["Rewrite"] == 0


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    """The bench writes both curves as a PNG, headless."""
    path = tmp_path / "pacing.png"
    plot(run(1, "paced"), run(1, "fcfs"), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
