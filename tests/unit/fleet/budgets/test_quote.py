"""A run's quote reckoned and told: median and p90 of the earlier runs, the hold (the p90,
or the cap if lower; nothing without either), the limit an operator puts on it, and the
words of a launch refused over it."""

from __future__ import annotations

import pytest

from fleet.budgets.quoting.quote import (
    QuoteUnderError,
    estimate_of,
    fits_under,
    parse_quote_under,
    quote_of,
)
from fleet.budgets.quoting.words import NOTHING_HELD, hold_text, over_limit, quote_text
from fleet.model import RunBudget
from tests.unit.chat_fakes import T0

# Fourteen past runs, newest first: 10,000 to 23,000 tokens, $0.50 to $3.10.
PAST = [(100 - i, 10_000 + 1_000 * i, round(0.5 + 0.2 * i, 2)) for i in range(14)]


def test_the_quote_is_the_median_and_p90_of_the_past_runs_and_holds_the_p90() -> None:
    quote = quote_of("coder", "claude", "sonnet", PAST, None, T0)
    assert quote.basis == tuple(range(100, 86, -1)) and quote.runs == quote.priced == 14
    assert quote.tokens == (16_500.0, 21_700.0)
    assert quote.usd is not None and quote.usd == pytest.approx((1.8, 2.84))
    assert (quote.hold_tokens, quote.hold_usd) == (quote.tokens[1], quote.usd[1])
    assert quote.quoted_at == T0
    assert quote_text(quote) == (
        "Quote: p90 $2.84 (median $1.80), 21,700 tokens (median 16,500), from 14 past runs "
        "on claude (sonnet)."
    )
    assert hold_text(quote) == (
        "Held against its budgets until it ends: $2.84 and 21,700 tokens (its p90)."
    )
    estimate = estimate_of(quote)
    assert estimate is not None and (estimate.runs, estimate.tokens) == (14, quote.tokens)


def test_a_cap_lower_than_the_p90_is_what_is_held() -> None:
    quote = quote_of("coder", "claude", "sonnet", PAST, RunBudget(None, 2.0), T0)
    assert quote.hold_usd == 2.0 and quote.cap_usd == 2.0
    assert quote.tokens is not None and quote.hold_tokens == quote.tokens[1]  # no cap in tokens
    assert hold_text(quote) == (
        "Held against its budgets until it ends: $2.00 and 21,700 tokens (its cap, below its p90)."
    )
    higher = quote_of("coder", "claude", "sonnet", PAST, RunBudget(None, 9.0), T0)
    assert higher.hold_usd == pytest.approx(2.84)


def test_no_history_and_no_cap_holds_nothing_and_says_so() -> None:
    quote = quote_of("coder", "claude", None, [], None, T0)
    assert (quote.tokens, quote.usd, quote.hold_tokens, quote.hold_usd) == (None,) * 4
    assert estimate_of(quote) is None
    assert (
        quote_text(quote) == "Quote: no earlier run on claude (its default model) to reckon from."
    )
    assert hold_text(quote) == f"Held: {NOTHING_HELD}."
    capped = quote_of("coder", "claude", None, [], RunBudget(50_000, 1.5), T0)
    assert (capped.hold_tokens, capped.hold_usd) == (50_000.0, 1.5)
    assert hold_text(capped) == (
        "Held against its budgets until it ends: $1.50 and 50,000 tokens (its cap)."
    )


def test_unpriced_runs_quote_in_tokens_and_hold_no_dollars() -> None:
    quote = quote_of("coder", "codex", "o4", [(3, 8_000, None), (2, 4_000, None)], None, T0)
    assert quote.usd is None and quote.priced == 0 and quote.hold_usd is None
    assert quote_text(quote) == (
        "Quote: p90 7,600 tokens (median 6,000), from 2 past runs on codex (o4), none of them "
        "priced."
    )
    some = quote_of("coder", "codex", "o4", [(3, 8_000, None), (2, 4_000, 0.4)], None, T0)
    assert some.usd == (0.4, 0.4) and some.priced == 1
    assert "(1 priced)" in quote_text(some)


def test_a_quote_fits_under_a_limit_at_or_above_its_hold_in_dollars() -> None:
    quote = quote_of("coder", "claude", "sonnet", PAST, RunBudget(None, 2.0), T0)
    assert fits_under(quote, 2.0) and fits_under(quote, 2.5) and not fits_under(quote, 1.99)
    assert not fits_under(quote_of("coder", "claude", None, [], None, T0), 100.0)


def test_over_the_limit_the_refusal_says_the_quote_and_how_to_go_ahead() -> None:
    past = [(1, 20_000, 3.1)] * 3 + [(2, 10_000, 1.2)] * 11
    quote = quote_of("coder", "claude", "sonnet", past, None, T0)
    assert quote.usd == pytest.approx((1.2, 3.1))
    assert over_limit(quote, 2.0, "chat") == (
        "coder's quote: p90 $3.10 (median $1.20, from 14 past runs on claude (sonnet)) is "
        "over --quote-under $2.00: `spawn coder --quote-under 3.50` to start it at this quote"
    )
    assert over_limit(quote, 2.0, "config").endswith(
        "is over its quote_under $2.00: raise its `quote_under:` to 3.50 in the config to start "
        "it at this quote"
    )
    capped = quote_of("coder", "claude", "sonnet", past, RunBudget(None, 3.0), T0)
    assert over_limit(capped, 2.0, "chat").startswith(
        "coder's quote: its cap $3.00 (p90 $3.10, from 14 past runs on claude (sonnet)) is over"
    )


def test_without_a_quote_in_dollars_the_refusal_names_the_cap_as_the_fix() -> None:
    none = quote_of("coder", "claude", "sonnet", [], None, T0)
    assert over_limit(none, 2.0, "chat") == (
        "coder has no quote in dollars (no earlier run on claude (sonnet) to quote from), so "
        "it cannot be kept under --quote-under $2.00: cap the run instead, `spawn coder "
        "--max-usd 2.00 --quote-under 2.00`, and the cap is its quote"
    )
    unpriced = quote_of("coder", "codex", "o4", [(3, 8_000, None)], None, T0)
    assert over_limit(unpriced, 2.5, "config") == (
        "coder has no quote in dollars (its 1 past run on codex (o4) had no price), so it "
        "cannot be kept under its quote_under $2.50: give coder `run_budget: {max_usd: 2.50}` (at "
        "most the limit) instead, and the cap is its quote"
    )


@pytest.mark.parametrize(
    ("text", "dollars"), [("2", 2.0), ("$2.50", 2.5), ("2.5", 2.5), (" 0.75 ", 0.75)]
)
def test_the_limit_reads_dollars(text: str, dollars: float) -> None:
    assert parse_quote_under(text) == dollars


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("two", "'two' is not an amount of dollars: write e.g. 2 or 2.50"),
        ("2.505", "at most two decimal places"),
        ("-2", "must be more than $0, got '-2'"),
        ("$-2", "must be more than $0"),
        ("0", "must be more than $0, got '0'"),
        ("5000000", "must be at most $1,000,000"),
        ("nan", "is not an amount of dollars"),
    ],
)
def test_a_limit_that_cannot_be_read_says_what_to_write(text: str, says: str) -> None:
    with pytest.raises(QuoteUnderError, match=says.replace("$", r"\$").replace("(", r"\(")):
        parse_quote_under(text)
