"""What a run of an agent usually costs, told when it is spawned: the median and the 90th
percentile of the tokens and dollars of its past finished runs on the same runtime and
model (:meth:`~fleet.ledger.stores.running.runs.RunsStore.run_costs`, asked for the runs
started before the one estimated: a run is never its own history), and what share of
the allowance of the budget that governs it that is today. Pure: the numbers come in;
with none, :data:`NO_HISTORY` is said.

**Today's allowance** is the budget's limit spread evenly over its window, a day's worth
of it: ``limit × 1 day ÷ window`` (a 7-day window of 7M tokens allows 1M a day). A window
of a day or less allows its whole limit per window, and is named so ("a 5h window").
Percentiles are :func:`statistics.quantiles`' inclusive method (the median of two runs
is their mean; their p90 lies 90 % of the way from the smaller to the larger).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from fleet.budgets.model import BudgetStatus
from fleet.metering import units

DAY: Final = timedelta(days=1)
NO_HISTORY: Final = "no history yet"


@dataclass(frozen=True, slots=True)
class RunEstimate:
    """The spend of ``runs`` past runs: median and p90 tokens, and dollars over the
    ``priced`` ones among them (``None`` when none was priced)."""

    runs: int
    tokens: tuple[float, float]  # median, p90
    usd: tuple[float, float] | None = None
    priced: int = 0


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    """The median and the 90th percentile of ``values`` (at least one)."""
    if not values:
        raise ValueError("percentiles of no values")
    if len(values) == 1:
        return float(values[0]), float(values[0])
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return float(statistics.median(values)), float(deciles[-1])


def estimate_runs(costs: Sequence[tuple[int, float | None]]) -> RunEstimate | None:
    """The estimate from past runs' ``(tokens, dollars or None)``; ``None`` without any."""
    if not costs:
        return None
    dollars = [usd for _, usd in costs if usd is not None]
    return RunEstimate(
        runs=len(costs),
        tokens=percentiles([float(tokens) for tokens, _ in costs]),
        usd=percentiles(dollars) if dollars else None,
        priced=len(dollars),
    )


def allowance_today(status: BudgetStatus) -> tuple[float, str]:
    """Today's allowance of the budget (in its unit) and how to name it."""
    length = status.end - status.start
    if length <= DAY:
        return status.limit, f"a {_span(length)} window"
    return status.limit * (DAY / length), "today"


def estimate_text(
    estimate: RunEstimate | None,
    runtime: str,
    model: str | None,
    status: BudgetStatus | None,
) -> str:
    """The spawn reply's line on what a run costs (markdown)."""
    on = f"{runtime} ({model or 'its default model'})"
    if estimate is None:
        return f"Usual cost of a run on {on}: {NO_HISTORY}."
    median, p90 = estimate.tokens
    usd = estimate.usd
    cost = f" ({units.usd(usd[0])})" if usd else ""
    cost90 = f" ({units.usd(usd[1])})" if usd else ""
    runs = f"{estimate.runs} past run{'s' if estimate.runs != 1 else ''}"
    text = (
        f"Usual cost of a run on {on}: median {units.tokens_words(median)}{cost}, "
        f"p90 {units.tokens_words(p90)}{cost90}, from {runs}."
    )
    if status is None:
        return text
    allowance, named = allowance_today(status)
    key = status.budget.key
    if status.unit == "usd":
        if usd is None:
            return text + f" {key} is in dollars and these runs had no price."
        shares, amount = (usd[0] / allowance, usd[1] / allowance), units.usd(allowance)
    else:
        shares, amount = (median / allowance, p90 / allowance), units.tokens_words(allowance)
    return text + (
        f" That is {_percent(shares[0])} (p90 {_percent(shares[1])}) of {key}'s allowance "
        f"for {named} ({amount})."
    )


def _percent(share: float) -> str:
    value = share * 100
    return f"{value:.1f}%" if value < 10 else f"{value:,.0f}%"


def _span(length: timedelta) -> str:
    minutes = round(length.total_seconds() / 60)
    if minutes % 60:
        return f"{minutes}m"
    return f"{minutes // 60}h" if minutes < 1440 or minutes % 1440 else f"{minutes // 1440}d"
