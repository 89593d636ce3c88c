"""A cap on one run as operators write it: ``--max-tokens``, ``--max-usd`` and
``run_budget:`` in a roster entry and in ``defaults``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.cli.check.summary import summary
from bot.config.reading.defaults import Defaults
from fleet.agents.roster import AgentEntry
from fleet.budgets.runs.budget import (
    RunBudgetEntry,
    RunBudgetError,
    cap_text,
    cap_warnings,
    parse_max_tokens,
    parse_max_usd,
    unpriced_cap,
)
from fleet.model import RunBudget
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import FleetSettings
from tests.unit.bot.config.test_config import parse


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("50000", 50_000), ("200k", 200_000), ("1.5M", 1_500_000), ("1_000", 1000), (" 7 ", 7)],
)
def test_max_tokens_reads_whole_numbers_with_a_suffix(text: str, tokens: int) -> None:
    """Whole numbers, with k/M suffixes and digit separators, as `budget set` reads them."""
    assert parse_max_tokens(text) == tokens


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0", "more than 0"),
        ("-5", "not a whole number"),
        ("1.5", "not a whole number"),
        ("lots", "not a whole number"),
        ("", "not a whole number"),
        ("5000000000000", "at most"),
    ],
)
def test_max_tokens_refuses_what_is_not_a_positive_whole_number(text: str, says: str) -> None:
    """Zero, negatives, fractions and words are refused, saying what to write."""
    with pytest.raises(RunBudgetError, match=says) as caught:
        parse_max_tokens(text)
    assert "--max-tokens" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "usd"), [("5", 5.0), ("2.5", 2.5), ("2.50", 2.5), ("$0.75", 0.75), ("0.01", 0.01)]
)
def test_max_usd_reads_dollars_with_at_most_two_decimals(text: str, usd: float) -> None:
    """Dollars, with or without a `$`, at most two decimal places."""
    assert parse_max_usd(text) == usd


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0", "more than \\$0"),
        ("0.00", "more than \\$0"),
        ("1.234", "at most two decimal places"),
        ("-1", "must be more than"),
        ("1e3", "not an amount"),
        ("nan", "not an amount"),
        ("9999999", "at most"),
    ],
)
def test_max_usd_refuses_what_is_not_positive_cents(text: str, says: str) -> None:
    """Zero, a third decimal, negatives and exponents are refused, saying what to write."""
    with pytest.raises(RunBudgetError, match=says):
        parse_max_usd(text)


def test_the_roster_and_defaults_take_a_run_budget_and_an_entry_wins() -> None:
    """`run_budget:` in an entry becomes its spec's cap; without one, `defaults`' applies."""
    defaults = Defaults.model_validate({"run_budget": {"max_tokens": 100_000}})
    own = AgentEntry.model_validate({"name": "a", "run_budget": {"max_usd": 2.5}})
    other = AgentEntry.model_validate({"name": "b"})
    assert own.to_spec(defaults).run_budget == RunBudget(None, 2.5)
    assert other.to_spec(defaults).run_budget == RunBudget(100_000, None)
    assert other.to_spec(Defaults()).run_budget is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({}, "give max_tokens, max_usd or both"),
        ({"max_tokens": 0}, "greater than 0"),
        ({"max_tokens": "5"}, "valid integer"),
        ({"max_usd": 1.234}, "at most two decimal places"),
        ({"max_usd": -1}, "greater than 0"),
        ({"max_tokens": 5, "limit": 3}, "Extra inputs"),
    ],
)
def test_a_run_budget_entry_refuses_bad_values(value: dict[str, object], says: str) -> None:
    """An empty cap, a non-positive or non-integer token count, sub-cent dollars and
    unknown keys are config errors."""
    with pytest.raises(ValidationError, match=says):
        RunBudgetEntry.model_validate(value)


def test_the_words_of_a_cap_and_of_an_unpriced_one() -> None:
    """A cap reads as tokens, dollars or both; an unpriced model's refusal names the fix."""
    assert cap_text(RunBudget(50_000)) == "50,000 tokens"
    assert cap_text(RunBudget(None, 2.5)) == "$2.50"
    assert cap_text(RunBudget(50_000, 2.5)) == "50,000 tokens or $2.50"
    assert "'m-1'" in unpriced_cap("m-1") and "`price_default`" in unpriced_cap("m-1")
    assert "--model" in unpriced_cap(None)


def test_check_config_warns_of_caps_that_cannot_bind() -> None:
    """Any cap without metering; a cap in dollars on a model without a price (or on the
    runtime's default model, unknown); nothing for caps that bind."""
    caps = [
        ("a", "priced", RunBudget(None, 1.0)),
        ("b", "free", RunBudget(None, 1.0)),
        ("c", None, RunBudget(None, 1.0)),
        ("d", "free", RunBudget(1000)),
        ("e", "free", None),
    ]
    priced = lambda model: model == "priced"  # noqa: E731
    [line] = cap_warnings(caps, priced, metered=True)
    assert "b (free), c (the runtime default model)" in line and "`price_default`" in line
    assert cap_warnings(caps, priced, metered=False) == [
        "run_budget caps a, b, c, d, but metering is off, so no cap can bind"
    ]
    assert cap_warnings(caps[:1] + caps[3:], priced, metered=True) == []


def test_a_run_budget_names_its_cutoff_refuse_by_default() -> None:
    """`cutoff:` is refuse, freeze or stop (refuse unless given); another word is refused."""
    assert RunBudgetEntry(max_tokens=5).to_budget() == RunBudget(5, None, "refuse")
    stop = RunBudgetEntry.model_validate({"max_tokens": 5, "cutoff": "stop"})
    assert stop.to_budget() == RunBudget(5, None, "stop")
    with pytest.raises(ValidationError, match="'refuse', 'freeze', 'stop' or 'ask'"):
        RunBudgetEntry.model_validate({"max_tokens": 5, "cutoff": "kill"})


def test_check_config_warns_of_a_roster_cap_in_dollars_on_an_unpriced_model() -> None:
    """The summary carries the warning; `metering: {enabled: false}` warns of every cap."""
    config = (
        "prices:\n  m-priced: {input: 1.0, output: 2.0}\n"
        "agents:\n"
        "  - name: a\n    model: m-free\n    run_budget: {max_usd: 1}\n"
        "  - name: b\n    model: m-priced\n    run_budget: {max_usd: 1}\n"
    )
    [line] = [w for w in summary(parse(config), []).splitlines() if w.startswith("warning:")]
    assert "a (m-free)" in line and "b (" not in line
    off = summary(parse(config + "metering: {enabled: false}\n"), [])
    assert "warning: run_budget caps a, b, but metering is off" in off


def test_an_ad_hoc_agent_takes_the_defaults_cap() -> None:
    """An agent no roster names is spawned with `defaults.run_budget`."""
    settings = FleetSettings(Path("/state"), run_budget=RunBudget(1000))
    assert settings.ad_hoc(AgentName("new")).run_budget == RunBudget(1000)
    assert FleetSettings(Path("/state")).ad_hoc(AgentName("new")).run_budget is None
