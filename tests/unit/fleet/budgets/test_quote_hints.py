"""Tests for the hints a launch over its quote limit is refused with
(fleet.budgets.quoting.words): each works as typed — a suggested ``--quote-under`` is at
least the quote, rounded up to suit its size, and an unpriced model is never told to cap
its run in dollars."""

from __future__ import annotations

import pytest

from fleet.budgets.quoting.words import over_limit
from fleet.ledger.records.quotes import Quote
from tests.unit.chat_fakes import T0


def quote(hold_usd: float | None, *, runs: int = 3) -> Quote:
    """A quote of ``runs`` earlier runs holding ``hold_usd`` (its p90; ``None``: unpriced)."""
    usd = None if hold_usd is None else (hold_usd / 2, hold_usd)
    return Quote(
        agent="coder",
        runtime="claude",
        model="opus",
        basis=tuple(range(1, runs + 1)),
        tokens=(1_000.0, 2_000.0),
        usd=usd,
        priced=runs if usd is not None else 0,
        cap_tokens=None,
        cap_usd=None,
        hold_tokens=2_000.0,
        hold_usd=hold_usd,
        quoted_at=T0,
    )


@pytest.mark.parametrize(
    ("held", "suggested"),
    [
        (0.10, "0.10"),
        (0.1001, "0.15"),
        (0.0042, "0.01"),
        (0.07, "0.07"),
        (0.62, "0.65"),
        (3.10, "3.50"),
        (42.2, "43.00"),
        (420.0, "420.00"),
    ],
)
def test_a_suggested_quote_under_is_at_least_the_quote_rounded_up_to_its_size(
    held: float, suggested: str
) -> None:
    """The suggested --quote-under is never below the quote it is for, rounded up to a step
    that suits it (a $0.10 quote is not told to use 0.50)."""
    said = over_limit(quote(held), 0.01, "chat")
    assert f"`spawn coder --quote-under {suggested}`" in said
    assert float(suggested) >= held


def test_an_unpriced_model_is_never_told_to_cap_in_dollars() -> None:
    """For a model with no price, the hint is not a --max-usd cap (refused as typed) but
    pricing the model, or spawning without the limit."""
    said = over_limit(quote(None), 1.0, "chat", priced=False)
    assert "--max-usd" not in said
    assert said == (
        "coder has no quote in dollars (its 3 past runs on claude (opus) had no price), so it "
        "cannot be kept under --quote-under $1.00: its model 'opus' has no price, so no cap "
        "in dollars binds either; add it to `prices` in the config, or set `price_default` — "
        "or leave --quote-under out: `spawn coder`"
    )
    priced = over_limit(quote(None, runs=0), 1.0, "chat")
    assert "`spawn coder --max-usd 1.00 --quote-under 1.00`" in priced
