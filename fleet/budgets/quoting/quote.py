"""A quote reckoned: the median and p90 of the tokens and dollars of the earlier runs it is
made from, the run's cap, and the hold — per unit, the p90 or the cap if lower (no history
and no cap: nothing to hold). Pure: the earlier runs come in. Also the limit an operator
puts on a quote (``spawn --quote-under X``, ``quote_under:`` of a roster agent or a
forge), read and checked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Final

from pydantic import AfterValidator, Field

from fleet.budgets.runs.budget import MAX_USD, RunBudgetError, cents, parse_dollars
from fleet.budgets.runs.estimate import RunEstimate, percentiles
from fleet.ledger.records.quotes import Quote
from fleet.model import RunBudget

MAX_QUOTE_UNDER: Final = MAX_USD  # as a run's cap in dollars: beyond it, a typo

Past = tuple[int, int, float | None]
"""One earlier run: its id, its tokens and its priced dollars (``None``: none priced)."""


def quote_of(
    agent: str,
    runtime: str,
    model: str | None,
    past: Sequence[Past],
    cap: RunBudget | None,
    at: datetime,
) -> Quote:
    """The quote of a run of ``agent`` on ``runtime`` with ``model`` from ``past`` (its
    earlier runs there, newest first) and the run's ``cap``, made ``at``."""
    tokens = percentiles([float(t) for _, t, _ in past]) if past else None
    dollars = [usd for _, _, usd in past if usd is not None]
    usd = percentiles(dollars) if dollars else None
    cap_tokens = cap.max_tokens if cap is not None else None
    cap_usd = cap.max_usd if cap is not None else None
    return Quote(
        agent=agent,
        runtime=runtime,
        model=model,
        basis=tuple(run_id for run_id, _, _ in past),
        tokens=tokens,
        usd=usd,
        priced=len(dollars),
        cap_tokens=cap_tokens,
        cap_usd=cap_usd,
        hold_tokens=_lower(None if tokens is None else tokens[1], cap_tokens),
        hold_usd=_lower(None if usd is None else usd[1], cap_usd),
        quoted_at=at,
    )


def estimate_of(quote: Quote) -> RunEstimate | None:
    """``quote`` as the estimate the spawn reply's share of the allowance is told from."""
    if quote.tokens is None:
        return None
    return RunEstimate(quote.runs, quote.tokens, quote.usd, quote.priced)


def fits_under(quote: Quote, limit: float) -> bool:
    """Whether ``quote`` holds at most ``limit`` dollars (an unknown hold does not fit)."""
    return quote.hold_usd is not None and quote.hold_usd <= limit + 1e-9


def _lower(p90: float | None, cap: float | None) -> float | None:
    if p90 is None:
        return None if cap is None else float(cap)
    return p90 if cap is None else min(p90, float(cap))


class QuoteUnderError(ValueError):
    """A limit on a quote that cannot be read; the message says what to write instead."""


def parse_quote_under(text: str) -> float:
    """``--quote-under``: dollars above 0 with at most two decimal places (``2``, ``2.50``,
    ``$2.50``), read as a run's cap in dollars is."""
    try:
        return parse_dollars(text, "--quote-under", example="2 or 2.50")
    except RunBudgetError as exc:
        raise QuoteUnderError(str(exc)) from None


QUOTE_UNDER_HELP: Final = (
    "Start a run only if its quote's p90 in dollars (or its cap in dollars, if lower) is at "
    "most this many dollars: more than 0, at most two decimal places. Without history in "
    "dollars the launch is refused unless a cap in dollars (`run_budget: {max_usd: X}`) "
    "at most this keeps it under."
)

QuoteUnder = Annotated[float, AfterValidator(cents), Field(gt=0, le=MAX_QUOTE_UNDER)]
"""``quote_under:`` in the config, as :func:`parse_quote_under` reads the flag."""
