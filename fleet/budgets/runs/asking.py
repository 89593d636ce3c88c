"""A run at its cap that asks (``cutoff: ask``): the amounts of a raise as operators write
them (``raise coder +$2``, ``+2``, ``+50k``), the raise offered by default, the cap once
raised, and the words of the ask. Pure: everything is passed in.

A raise is in one of the cap's two measures (``usd`` or ``tokens``): ``$`` says dollars,
``k`` or ``M`` says tokens, a bare number is in the cap's own measure (the one reached,
when it has both).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Final, Literal

from fleet.budgets.runs.budget import MAX_TOKENS, MAX_USD, cap_text
from fleet.metering import units
from fleet.model import RunBudget

Unit = Literal["usd", "tokens"]

_AMOUNT: Final = re.compile(r"\+?\s*(\$)?\s*(\d+(?:\.\d+)?)\s*([km]?)")
_MULTIPLIERS: Final = {"": 1, "k": 1_000, "m": 1_000_000}


class RaiseError(ValueError):
    """An amount that cannot raise the cap; the message says what to write instead."""


def reached_unit(cap: RunBudget, tokens: float, usd: float) -> Unit:
    """The measure of ``cap`` that ``tokens`` and ``usd`` reached (dollars first)."""
    if cap.max_usd is not None and (usd >= cap.max_usd or cap.max_tokens is None):
        return "usd"
    return "tokens"


def offer(cap: RunBudget, unit: Unit) -> float:
    """The raise offered on ``cap``'s ``unit``: its configured offer, else the cap its task
    began with (so raise after raise does not compound)."""
    began = task_cap(cap)
    if unit == "usd":
        return cap.offer_usd or began.max_usd or 0.0
    return float(cap.offer_tokens or began.max_tokens or 0)


def task_cap(cap: RunBudget) -> RunBudget:
    """``cap`` as its task began, before any operator raised it."""
    if not cap.raised_usd and not cap.raised_tokens:
        return cap
    usd = None if cap.max_usd is None else round(max(cap.max_usd - cap.raised_usd, 0.01), 2)
    tokens = None if cap.max_tokens is None else max(cap.max_tokens - cap.raised_tokens, 1)
    return replace(cap, max_usd=usd, max_tokens=tokens, raised_usd=0.0, raised_tokens=0)


def parse_raise(text: str, cap: RunBudget, reached: Unit) -> tuple[Unit, float]:
    """``+$2``, ``$2.50``, ``+2``, ``+50k`` as (unit, amount) on ``cap``; a bare number is
    in the ``reached`` measure. Raises :class:`RaiseError` saying what to write."""
    shown = text.strip()[:24]
    match = _AMOUNT.fullmatch(text.strip().lower().replace(",", "").replace("_", ""))
    if match is None:
        raise RaiseError(f"{shown!r} is no amount: write e.g. `+$2` (dollars) or `+50k` (tokens)")
    dollars, number, suffix = match[1] is not None, float(match[2]), match[3]
    if dollars and suffix:
        raise RaiseError(f"{shown!r} mixes dollars and tokens: write `+$2` or `+50k`")
    unit: Unit = "usd" if dollars else "tokens" if suffix else reached
    if unit == "usd":
        if cap.max_usd is None:
            raise RaiseError(f"the cap is {cap_text(cap)}, not in dollars: raise it in tokens")
        if round(number, 2) != number or not 0 < number <= MAX_USD:
            raise RaiseError(
                f"{shown!r}: a raise in dollars is more than $0, at most ${MAX_USD:,.0f}, "
                "with at most two decimal places"
            )
        return unit, number
    if cap.max_tokens is None:
        raise RaiseError(f"the cap is {cap_text(cap)}, not in tokens: raise it in dollars")
    tokens = number * _MULTIPLIERS[suffix]
    if not math.isfinite(tokens) or not tokens.is_integer() or not 0 < tokens <= MAX_TOKENS:
        raise RaiseError(f"{shown!r}: a raise in tokens is a whole number above 0, e.g. 50k")
    return unit, tokens


def raised(cap: RunBudget, unit: Unit, amount: float) -> RunBudget:
    """``cap`` raised by ``amount`` of ``unit`` (kept within the largest cap there is), the
    raise counted as its task's."""
    if unit == "usd":
        usd = min(round((cap.max_usd or 0.0) + amount, 2), MAX_USD)
        more = round(cap.raised_usd + usd - (cap.max_usd or 0.0), 2)
        return replace(cap, max_usd=usd, raised_usd=more)
    tokens = min(int((cap.max_tokens or 0) + amount), MAX_TOKENS)
    more_tokens = cap.raised_tokens + tokens - (cap.max_tokens or 0)
    return replace(cap, max_tokens=tokens, raised_tokens=more_tokens)


def amount_text(unit: Unit, amount: float) -> str:
    """``$2.00`` or ``50,000 tokens``."""
    return units.usd(amount) if unit == "usd" else units.tokens_words(amount)


def raise_word(unit: Unit, amount: float) -> str:
    """The amount as ``raise`` takes it: ``+$2``, ``+$2.50``, ``+50k``, ``+1234``."""
    if unit == "usd":
        return f"+${amount:.2f}".removesuffix(".00")
    if amount >= 1000 and amount % 1000 == 0:
        return f"+{int(amount) // 1000}k"
    return f"+{int(amount)}"


def ask_subject(agent: str, cap: RunBudget, spent: str) -> str:
    """What the ask says happened: ``coder reached its $2.00 cap (it has used …)``."""
    return f"{agent} reached its {cap_text(cap)} cap (its run has used {spent})"


def ask_detail(agent: str, unit: Unit, amount: float, then: str, within: float) -> str:
    """How to answer, and what happens without an answer."""
    minutes = max(int(within // 60), 1)
    fallback = "it is stopped" if then == "stop" else "it stays frozen"
    return (
        f"`raise {agent} {raise_word(unit, amount)}` or `stop {agent}`. "
        f"Unanswered within {minutes} min, {fallback}."
    )
