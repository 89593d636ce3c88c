"""The words a quote is told in: the quote itself and what it holds (a spawn's answer,
``runs NAME``, a forge run's status comment), and why a launch over its limit
(``--quote-under``, ``quote_under:``) is refused, with how to go ahead. Pure."""

from __future__ import annotations

import math
from typing import Final, Literal

from fleet.ledger.records.quotes import Quote
from fleet.metering import units

NOTHING_HELD: Final = "nothing is held against its budgets: no history and no cap"

Asker = Literal["chat", "roster", "config"]
"""Where the limit came from, for the fix: a ``spawn`` typed in chat (the flag), the
roster agent's ``quote_under:`` under a ``spawn`` typed in chat (which a flag overrides),
or the config alone (a forge's or a roster agent's ``quote_under:``, nobody typing).
"""


def on_what(runtime: str, model: str | None) -> str:
    """``claude (sonnet)``: the runtime and model a quote is of."""
    return f"{runtime} ({model or 'its default model'})"


def usd(value: float) -> str:
    """Dollars as a quote says them (:func:`fleet.metering.units.usd`)."""
    return units.usd(value)


def basis_words(quote: Quote) -> str:
    """``from 14 past runs on claude (sonnet)``, or that there were none."""
    on = on_what(quote.runtime, quote.model)
    if not quote.runs:
        return f"no earlier run on {on}"
    return f"from {quote.runs} past run{'s' if quote.runs != 1 else ''} on {on}"


def quote_text(quote: Quote) -> str:
    """The quote in one sentence (markdown)."""
    basis = basis_words(quote)
    tokens, dollars = quote.tokens, quote.usd
    if tokens is None:
        return f"Quote: {basis} to reckon from."
    in_tokens = f"{units.tokens_words(tokens[1])} (median {units.tokens(tokens[0])})"
    if dollars is None:
        return f"Quote: p90 {in_tokens}, {basis}, none of them priced."
    priced = "" if quote.priced == quote.runs else f" ({quote.priced} priced)"
    return f"Quote: p90 {usd(dollars[1])} (median {usd(dollars[0])}), {in_tokens}, {basis}{priced}."


def hold_text(quote: Quote) -> str:
    """What the run holds against its budgets, and why that much."""
    held = [usd(quote.hold_usd)] if quote.hold_usd is not None else []
    if quote.hold_tokens is not None:
        held.append(units.tokens_words(quote.hold_tokens))
    if not held:
        return f"Held: {NOTHING_HELD}."
    capped = _capped(quote)
    why = "its cap, below its p90" if capped and _has_p90(quote) else "its cap"
    why = why if capped else "its p90"
    return f"Held against its budgets until it ends: {' and '.join(held)} ({why})."


def over_limit(
    quote: Quote, limit: float, asker: Asker, *, priced: bool = True, unlimited: bool = True
) -> str:
    """Why a launch whose quote is over ``limit`` dollars is not started, and how to go
    ahead — a way that works as typed: ``priced``: whether the run's model has a price (a
    cap in dollars needs one); ``unlimited``: whether the launch without the flag would have
    no limit (the agent has no ``quote_under:`` of its own)."""
    agent, named = quote.agent, _named(limit, asker)
    if quote.hold_usd is None:
        on = on_what(quote.runtime, quote.model)
        why = (
            f"no earlier run on {on} to quote from"
            if not quote.runs
            else f"its {quote.runs} past run{'s' if quote.runs != 1 else ''} on {on} had no price"
        )
        if not priced:
            return (
                f"{agent} has no quote in dollars ({why}), so it cannot be kept under {named}: "
                f"{_price_fix(agent, quote.model, asker if unlimited else 'roster')}"
            )
        return (
            f"{agent} has no quote in dollars ({why}), so it cannot be kept under {named}: "
            f"{_cap_fix(agent, limit, asker)}, and the cap is its quote"
        )
    return (
        f"{agent}'s quote: {_held_words(quote)} is over {named}: "
        f"{_raise_fix(agent, _above(quote.hold_usd), asker)} to start it at this quote"
    )


def _price_fix(agent: str, model: str | None, asker: Asker) -> str:
    """How to go ahead when the run's model has no price: no limit in dollars can bind."""
    named = f"its model {model!r}" if model else "its model"
    price = f"{named} has no price, so no cap in dollars binds either; add it to `prices` in "
    price += "the config, or set `price_default`"
    if asker == "chat":
        return f"{price} — or leave --quote-under out: `spawn {agent}`"
    return price


def _held_words(quote: Quote) -> str:
    """``p90 $3.10 (median $1.20, from 14 past runs on claude (sonnet))``, or the cap."""
    basis, dollars = basis_words(quote), quote.usd
    if _capped(quote) and quote.cap_usd is not None:
        if dollars is None:
            return f"its cap {usd(quote.cap_usd)} ({basis} in dollars)"
        return f"its cap {usd(quote.cap_usd)} (p90 {usd(dollars[1])}, {basis})"
    assert dollars is not None
    return f"p90 {usd(dollars[1])} (median {usd(dollars[0])}, {basis})"


def _capped(quote: Quote) -> bool:
    """Whether the hold in dollars (else in tokens) is the run's cap."""
    if quote.hold_usd is not None:
        return quote.cap_usd is not None and quote.hold_usd == quote.cap_usd
    return quote.cap_tokens is not None and quote.hold_tokens == quote.cap_tokens


def _has_p90(quote: Quote) -> bool:
    return (quote.usd if quote.hold_usd is not None else quote.tokens) is not None


def _named(limit: float, asker: Asker) -> str:
    return f"--quote-under {usd(limit)}" if asker == "chat" else f"its quote_under {usd(limit)}"


_STEPS: Final = ((10, 1), (100, 5), (1_000, 50), (10_000, 100))
"""Rounding steps in cents, by the size of the amount rounded (below so many cents)."""


def _above(amount: float) -> str:
    """A limit ``amount`` fits under, rounded up to a step that suits its size: a cent
    under $0.10, five cents under $1, a half dollar under $10, a dollar under $100, ten
    dollars beyond."""
    cents = math.ceil(round(amount * 100, 6))
    step = next((s for below, s in _STEPS if cents < below), 1_000)
    rounded = max(math.ceil(cents / step) * step, 1)
    return f"{rounded / 100:.2f}"


def _raise_fix(agent: str, amount: str, asker: Asker) -> str:
    if asker in ("chat", "roster"):  # a flag overrides the roster's own
        return f"`spawn {agent} --quote-under {amount}`"
    return f"raise its `quote_under:` to {amount} in the config"


def _cap_fix(agent: str, limit: float, asker: Asker) -> str:
    if asker in ("chat", "roster"):
        return (
            f"cap the run instead, `spawn {agent} --max-usd {limit:.2f} --quote-under {limit:.2f}`"
        )
    return f"give {agent} `run_budget: {{max_usd: {limit:.2f}}}` (at most the limit) instead"
