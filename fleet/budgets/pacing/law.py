"""The pacing law: how a budget's spend compares with an even spread over its window.
Pure functions of numbers and times — ``now`` is always passed in.

The **even-spread line** rises from 0 at the window's start to the limit at its end; at
any moment it is what the budget would have used had it spent evenly.

* ``target_rate`` = remaining allowance ÷ remaining window time (units per hour): the rate
  that lands exactly on the limit at the end. 0 at and after the end.
* ``pace_ratio`` = used ÷ the line's value now (1 on the line, 2 at twice the pace).
  Early in a window the line is close to 0 and the ratio of any spend to it is huge, so
  the line is taken as at least :data:`MIN_ELAPSED_FRACTION` of the limit: the first 1 %
  of a window may spend 1 % of the limit and still read as on pace.
* ``projected_end_use`` = used + burn rate × remaining time; ``projected_exhaustion`` is
  when the limit is reached at that rate, or ``None`` when that is not before the end.
* ``status``: ``exhausted`` at the limit, else ``over`` above ``1 + tolerance``,
  ``under`` below ``1 - tolerance``, ``on`` between.

**Learned spend per task** (:class:`SpendEstimator`): the median tokens of past runs
with the same runtime, model and prompt class (see :func:`prompt_class`), falling back
to runtime + model, then runtime, then all runs; :func:`fits` says whether a launch of
that size fits the budget's pace now.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from fleet.budgets.model import BudgetStatus, PaceStatus, Source
from fleet.budgets.resets import reset_confidence
from fleet.ledger.records.budgets import Budget

MIN_ELAPSED_FRACTION: Final = 0.01
"""The least fraction of a window counted as elapsed when computing the pace ratio."""

MIN_SAMPLES: Final = 3
"""Runs a key needs before its median is trusted; with fewer, the next coarser key."""

_HOUR = timedelta(hours=1)
_WORD = re.compile(r"[a-z][a-z0-9_-]*")


# --- The law ----------------------------------------------------------------------------


def elapsed_fraction(start: datetime, end: datetime, now: datetime) -> float:
    """How much of the window has passed, from 0 (at or before the start) to 1 (at or
    after the end). Raises ``ValueError`` for an empty or inverted window."""
    _check_window(start, end)
    return min(max((now - start) / (end - start), 0.0), 1.0)


def hours_left(start: datetime, end: datetime, now: datetime) -> float:
    """Hours from ``now`` (or the start, if later) to the end; 0 at and after the end."""
    _check_window(start, end)
    return max((end - max(now, start)) / _HOUR, 0.0)


def even_spread(limit: float, start: datetime, end: datetime, at: datetime) -> float:
    """The even-spread line's value at ``at``: ``limit`` × the elapsed fraction."""
    return limit * elapsed_fraction(start, end, at)


def target_rate(limit: float, used: float, start: datetime, end: datetime, now: datetime) -> float:
    """Units per hour that would spend the remaining allowance exactly by the end; 0 at
    and after the end, and when nothing is left."""
    _check_limit(limit)
    left = hours_left(start, end, now)
    if left <= 0.0:
        return 0.0
    return max(limit - used, 0.0) / left


def pace_ratio(limit: float, used: float, start: datetime, end: datetime, now: datetime) -> float:
    """``used`` ÷ the even-spread line now (at least :data:`MIN_ELAPSED_FRACTION` of it)."""
    _check_limit(limit)
    fraction = max(elapsed_fraction(start, end, now), MIN_ELAPSED_FRACTION)
    return max(used, 0.0) / (limit * fraction)


def projected_end_use(used: float, burn_rate: float, end: datetime, now: datetime) -> float:
    """What will have been used at the end if spending goes on at ``burn_rate`` per hour."""
    return used + max(burn_rate, 0.0) * max((end - now) / _HOUR, 0.0)


def projected_exhaustion(
    limit: float, used: float, burn_rate: float, end: datetime, now: datetime
) -> datetime | None:
    """When ``used`` reaches ``limit`` at ``burn_rate`` per hour: ``now`` if it already
    has, ``None`` if that would not happen before ``end``."""
    _check_limit(limit)
    if used >= limit:
        return now
    if burn_rate <= 0.0 or now >= end:
        return None
    hours = (limit - used) / burn_rate
    # Compare in hours before building a timedelta: a tiny rate gives a huge, overflowing one.
    if hours >= (end - now) / _HOUR:
        return None
    return now + timedelta(hours=hours)


def catch_up_time(limit: float, used: float, start: datetime, end: datetime) -> datetime:
    """When the even-spread line reaches ``used`` (the start if ``used`` is 0 or less, the
    end if it is at or past the limit)."""
    _check_limit(limit)
    _check_window(start, end)
    return start + (end - start) * min(max(used / limit, 0.0), 1.0)


def pace_status(ratio: float, used: float, limit: float, tolerance: float) -> PaceStatus:
    """``exhausted`` at the limit, else where ``ratio`` sits against ``1 ± tolerance``."""
    if used >= limit:
        return PaceStatus.EXHAUSTED
    if ratio > 1.0 + tolerance:
        return PaceStatus.OVER
    if ratio < 1.0 - tolerance:
        return PaceStatus.UNDER
    return PaceStatus.ON


def burn_rate(series: Sequence[tuple[datetime, float]], now: datetime, span: timedelta) -> float:
    """Units per hour over the ``span`` before ``now``, from cumulative use (oldest first;
    the value at a time is that of the last point at or before it, 0 before the first)."""
    if span <= timedelta(0):
        raise ValueError("a burn rate needs a positive span")
    return (_value_at(series, now) - _value_at(series, now - span)) / (span / _HOUR)


@dataclass(frozen=True, slots=True)
class Spent:
    """A budget's spend in its window so far: ``used`` of ``limit``, in its ``unit``
    (``tokens``, or ``usd`` for a cost-only budget), burning ``burn_rate`` units an hour."""

    used: float
    limit: float
    unit: str
    burn_rate: float


def assess(
    budget: Budget,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    spent: Spent,
    source: Source,
    series: tuple[tuple[datetime, float], ...] = (),
    usd_used: float | None = None,
    provider_reset: bool = False,
) -> BudgetStatus:
    """The law's numbers for one budget, as a :class:`BudgetStatus` (on step ``none``: the
    policy fills in the enforcement fields). ``provider_reset``: ``end`` is a fresh provider
    reading's reset (how sure it is: :func:`~fleet.budgets.resets.reset_confidence`)."""
    used, limit, burn_rate = spent.used, spent.limit, spent.burn_rate
    ratio = pace_ratio(limit, used, start, end, now)
    return BudgetStatus(
        budget=budget,
        start=start,
        end=end,
        now=now,
        unit=spent.unit,
        used=used,
        limit=limit,
        pace_ratio=ratio,
        target_rate=target_rate(limit, used, start, end, now),
        projected_end_use=projected_end_use(used, burn_rate, end, now),
        projected_exhaustion=projected_exhaustion(limit, used, burn_rate, end, now),
        status=pace_status(ratio, used, limit, budget.tolerance),
        source=source,
        reset_confidence=reset_confidence(
            budget.window,
            end=end,
            now=now,
            provider_said=provider_reset,
            mirrors_provider=budget.account is not None
            or budget.scope.kind in ("account", "provider"),
        ),
        series=series,
        usd_used=usd_used,
    )


def headroom(status: BudgetStatus) -> float:
    """How much the budget may spend now and still be on pace: up to the top of its
    tolerance above the even-spread line (taken as in :func:`pace_ratio`), never past the
    limit; 0 if it is there already."""
    line = max(
        even_spread(status.limit, status.start, status.end, status.now),
        status.limit * MIN_ELAPSED_FRACTION,
    )
    ceiling = min(line * (1.0 + status.budget.tolerance), status.limit)
    return max(ceiling - status.used, 0.0)


def fits(expected: float, status: BudgetStatus) -> bool:
    """Whether a launch expected to spend ``expected`` fits the pace now: spent at once,
    it would leave the budget within its tolerance of the line (see :func:`headroom`)."""
    return status.status is not PaceStatus.EXHAUSTED and expected <= headroom(status)


def _value_at(series: Sequence[tuple[datetime, float]], at: datetime) -> float:
    value = 0.0
    for when, cumulative in series:
        if when > at:
            break
        value = cumulative
    return value


def _check_limit(limit: float) -> None:
    if limit <= 0.0:
        raise ValueError(f"a limit must be positive, not {limit}")


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ValueError(f"a window must end after it starts ({start} → {end})")


# --- Learned spend per task ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskSpend:
    """One finished run, as the ledger saw it: what it was and what it spent."""

    runtime: str
    model: str | None
    prompt_class: str
    tokens: float


def prompt_class(prompt: str) -> str:
    """A coarse class of a prompt: its length bucket and its first word, e.g.
    ``short:fix`` — similar asks tend to cost alike, and this stays stable under rewording
    of the details. Buckets: ``short`` (< 200 characters), ``medium`` (< 2000), ``long``;
    the word is lowercased, at most 24 characters, ``-`` when there is none."""
    text = prompt.strip()
    size = "short" if len(text) < 200 else "medium" if len(text) < 2000 else "long"
    match = _WORD.search(text.lower())
    return f"{size}:{match[0][:24] if match else '-'}"


class SpendEstimator:
    """Expected tokens of a new launch, learned from finished runs.

    The median of the runs with the same runtime, model and prompt class; with fewer than
    :data:`MIN_SAMPLES` of those, of the same runtime and model; then of the runtime; then
    of every run. ``None`` with no history at all. Medians, not means: one runaway
    session should not make every later launch look unaffordable.
    """

    def __init__(self, history: Iterable[TaskSpend]) -> None:
        groups: defaultdict[tuple[str | None, ...], list[float]] = defaultdict(list)
        for row in history:
            for key in _keys(row.runtime, row.model, row.prompt_class):
                groups[key].append(row.tokens)
        self._medians = {key: statistics.median(v) for key, v in groups.items()}
        self._counts = {key: len(v) for key, v in groups.items()}

    def expected(self, runtime: str, model: str | None, prompt_class: str) -> float | None:
        """The expected tokens of a launch, or ``None`` when there is no history."""
        keys = _keys(runtime, model, prompt_class)
        for key in keys[:-1]:
            if self._counts.get(key, 0) >= MIN_SAMPLES:
                return self._medians[key]
        return self._medians.get(keys[-1])


def _keys(runtime: str, model: str | None, prompt_class: str) -> list[tuple[str | None, ...]]:
    """The estimator's keys from the most to the least specific."""
    return [(runtime, model, prompt_class), (runtime, model), (runtime,), ()]
