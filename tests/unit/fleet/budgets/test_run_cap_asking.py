"""A run cap that asks (``cutoff: ask``): its roster settings checked with clear words, kept
whole in the ledger's spec, and the raise amounts operators write read in the cap's
measure."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fleet.budgets.runs.asking import (
    RaiseError,
    ask_detail,
    offer,
    parse_raise,
    raise_word,
    raised,
    reached_unit,
)
from fleet.budgets.runs.budget import RunBudgetEntry
from fleet.ledger.records.specs import _run_budget, _run_budget_extra
from fleet.model import RunBudget
from tests.unit.chat_fakes import T0

BOTH = RunBudget(max_tokens=200_000, max_usd=2.0, cutoff="ask")


def test_cutoff_ask_takes_its_wait_its_fallback_and_its_offer() -> None:
    """`ask_within: 45m`, `then: stop`, `offer_usd: 1.5` become the cap's; defaults: 30 min,
    stay frozen, the cap again."""
    entry = RunBudgetEntry.model_validate(
        {"max_usd": 2, "cutoff": "ask", "ask_within": "45m", "then": "stop", "offer_usd": 1.5}
    )
    cap = entry.to_budget()
    assert (cap.cutoff, cap.ask_within, cap.then, cap.offer_usd) == ("ask", 2700.0, "stop", 1.5)
    plain = RunBudgetEntry.model_validate({"max_tokens": 5000, "cutoff": "ask"}).to_budget()
    assert (plain.ask_within, plain.then, plain.offer_tokens) == (1800.0, "freeze", None)


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"max_usd": 2, "then": "stop"}, "then applies only with `cutoff: ask`"),
        ({"max_usd": 2, "cutoff": "ask", "ask_within": "soon"}, "'soon' is not a duration"),
        ({"max_usd": 2, "cutoff": "ask", "then": "kill"}, "'stop' or 'freeze'"),
        ({"max_usd": 2, "cutoff": "ask", "offer_tokens": 5}, "give max_tokens too"),
        ({"max_tokens": 9, "cutoff": "ask", "offer_usd": 1}, "give max_usd too"),
        ({"max_usd": 2, "cutoff": "ask", "offer_usd": 0.125}, "two decimal places"),
    ],
)
def test_settings_that_cannot_ask_are_refused_saying_why(
    fields: dict[str, object], said: str
) -> None:
    """Each mistake is named, with what to write."""
    with pytest.raises(ValidationError, match=said):
        RunBudgetEntry.model_validate(fields)


def test_the_ledger_keeps_an_asking_cap_whole() -> None:
    """Written to the spec's JSON and read back: the same cap; unknown words fall back."""
    cap = RunBudget(5000, 2.0, "ask", T0, 600.0, "stop", 1000, 0.5)
    assert _run_budget(_run_budget_extra(cap)) == cap
    odd = _run_budget({"max_tokens": 5, "cutoff": "ask", "then": "explode", "ask_within": -1})
    assert odd is not None and (odd.then, odd.ask_within) == ("freeze", 1800.0)


@pytest.mark.parametrize(
    ("text", "unit", "amount"),
    [
        ("+$2", "usd", 2.0),
        ("$2.50", "usd", 2.5),
        ("+2", "usd", 2.0),  # bare: the measure reached
        ("+50k", "tokens", 50_000.0),
        ("+1.5M", "tokens", 1_500_000.0),
        ("+ 12,000k", "tokens", 12_000_000.0),
    ],
)
def test_a_raise_is_read_in_the_caps_measure(text: str, unit: str, amount: float) -> None:
    """`$` says dollars, `k`/`M` tokens, a bare number the measure the run reached."""
    assert parse_raise(text, BOTH, "usd") == (unit, amount)


@pytest.mark.parametrize(
    ("text", "cap", "said"),
    [
        ("lots", BOTH, "is no amount"),
        ("+$2k", BOTH, "mixes dollars and tokens"),
        ("+$0.001", BOTH, "two decimal places"),
        ("+50k", RunBudget(max_usd=2.0), "not in tokens: raise it in dollars"),
        ("+$2", RunBudget(max_tokens=9), "not in dollars: raise it in tokens"),
        ("+0.0005k", RunBudget(max_tokens=9), "whole number"),
    ],
)
def test_a_raise_that_cannot_be_read_says_what_to_write(
    text: str, cap: RunBudget, said: str
) -> None:
    """A wrong amount is refused with the way to write it."""
    with pytest.raises(RaiseError, match=said.replace("$", r"\$")):
        parse_raise(text, cap, "tokens" if cap.max_usd is None else "usd")


def test_the_offer_the_raise_and_the_words() -> None:
    """The offer is the cap again unless set; a raise adds to the measure reached; the
    word is what `raise` takes back."""
    assert reached_unit(BOTH, 10_000, 2.1) == "usd"
    assert reached_unit(BOTH, 200_000, 1.0) == "tokens"
    assert offer(BOTH, "usd") == 2.0
    assert offer(RunBudget(max_usd=2.0, offer_usd=0.5), "usd") == 0.5
    assert raised(BOTH, "tokens", 50_000).max_tokens == 250_000
    assert raised(BOTH, "usd", 0.1).max_usd == 2.1
    assert [raise_word("usd", 2.0), raise_word("usd", 2.5), raise_word("tokens", 50_000)] == [
        "+$2",
        "+$2.50",
        "+50k",
    ]
    said = ask_detail("coder", "usd", 2.0, "stop", 90)
    assert said == "`raise coder +$2` or `stop coder`. Unanswered within 1 min, it is stopped."
