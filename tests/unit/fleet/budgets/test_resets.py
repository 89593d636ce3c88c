"""Tests for fleet.budgets.resets: how sure a reset time is, by who gave it, and the words
that say so beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet.accounts.quota import QuotaStatus, QuotaWindow
from fleet.budgets.resets import (
    RESET_TAGS,
    reset_confidence,
    reset_tag,
    resets,
    window_confidence,
)
from fleet.ledger.records.budgets import Confidence, WindowKind, WindowSpec

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=6)
FIVE_HOURS = timedelta(hours=5)


@pytest.mark.parametrize(
    ("window", "provider_said", "sure"),
    [
        # A fresh provider reading's reset is the provider's, whatever the window says.
        (WindowSpec(WindowKind.ROLLING, FIVE_HOURS), True, Confidence.PROVIDER),
        (WindowSpec(WindowKind.ROLLING, FIVE_HOURS, LATER), True, Confidence.PROVIDER),
        # A reset_at or a calendar window: the user's, in the words they chose.
        (WindowSpec(WindowKind.FIXED, reset_at=LATER), False, Confidence.USER),
        (WindowSpec(WindowKind.ROLLING, FIVE_HOURS, LATER), False, Confidence.USER),
        (WindowSpec(WindowKind.DAILY), False, Confidence.USER),
        (WindowSpec(WindowKind.WEEKLY), False, Confidence.USER),
        (WindowSpec(WindowKind.MONTHLY), False, Confidence.USER),
        (
            WindowSpec(WindowKind.FIXED, reset_at=LATER, confidence=Confidence.PROVIDER),
            False,
            Confidence.PROVIDER,
        ),
        (
            WindowSpec(WindowKind.ROLLING, FIVE_HOURS, LATER, Confidence.ESTIMATED),
            False,
            Confidence.ESTIMATED,
        ),
        (
            WindowSpec(WindowKind.MONTHLY, confidence=Confidence.UNKNOWN),
            False,
            Confidence.UNKNOWN,
        ),
        # A rolling window nobody placed, guessing a provider's: laid from the epoch by us.
        (WindowSpec(WindowKind.ROLLING, FIVE_HOURS), False, Confidence.ESTIMATED),
        # What the user declares describes a reset they gave, not our grid.
        (
            WindowSpec(WindowKind.ROLLING, FIVE_HOURS, confidence=Confidence.PROVIDER),
            False,
            Confidence.ESTIMATED,
        ),
    ],
)
def test_who_gave_the_reset_says_how_sure_it_is(
    window: WindowSpec, provider_said: bool, sure: Confidence
) -> None:
    """On a budget mirroring a provider's quota: the provider's fresh word, then what the
    user set, then our own estimate."""
    said = reset_confidence(
        window, end=LATER, now=NOW, provider_said=provider_said, mirrors_provider=True
    )
    assert said is sure


def test_a_window_of_fleetwardens_own_resets_exactly_where_it_is_laid() -> None:
    """A rolling window nobody placed on a budget of an agent, a group or global is the
    window Fleetwarden enforces: its reset is the config's, not a guess."""
    window = WindowSpec(WindowKind.ROLLING, FIVE_HOURS)
    assert reset_confidence(window, end=LATER, now=NOW) is Confidence.USER


@pytest.mark.parametrize("provider_said", [True, False])
def test_a_reset_that_has_passed_is_unknown(provider_said: bool) -> None:
    """Whoever gave it, a reset at or before now promises nothing about the next one."""
    window = WindowSpec(WindowKind.FIXED, reset_at=NOW)
    assert reset_confidence(window, end=NOW, now=NOW, provider_said=provider_said) is (
        Confidence.UNKNOWN
    )


@pytest.mark.parametrize(
    ("confidence", "words"),
    [
        (Confidence.PROVIDER, "resets 18:00 (provider)"),
        (Confidence.USER, "resets 18:00 (set by you)"),
        (Confidence.ESTIMATED, "resets 18:00 (estimated)"),
        (Confidence.UNKNOWN, "resets 18:00 (unknown)"),
    ],
)
def test_each_confidence_has_its_short_words(confidence: Confidence, words: str) -> None:
    """The time, then who gave it in brackets, in plain words."""
    assert resets("18:00", confidence) == words


def test_every_confidence_has_a_tag() -> None:
    """No confidence is left without its words (a new one must be given some)."""
    assert set(RESET_TAGS) == set(Confidence)
    assert reset_tag(Confidence.USER) == "set by you"


def test_no_reset_or_one_gone_by_says_the_next_is_unknown() -> None:
    """Without a time: ``reset unknown``; with one passed: it, and that none is known."""
    assert resets(None, Confidence.UNKNOWN) == "reset unknown"
    assert resets("Mon 09:00", Confidence.UNKNOWN, passed=True) == (
        "reset Mon 09:00 passed, next unknown"
    )


def test_an_accounts_window_reset_is_the_providers_or_unknown() -> None:
    """A quota window's reset came in the provider's headers; none given is unknown."""
    window = QuotaWindow("max", "5h", 0.4, LATER, QuotaStatus.ALLOWED, NOW, "anthropic-unified")
    assert window_confidence(window) is Confidence.PROVIDER
    no_reset = QuotaWindow("key", "tokens", 0.4, None, QuotaStatus.ALLOWED, NOW, "openai-api")
    assert window_confidence(no_reset) is Confidence.UNKNOWN
