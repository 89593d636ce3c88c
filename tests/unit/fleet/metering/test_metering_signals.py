"""Tests for fleet.metering.wire.signals: providers' rate-limit headers as quota signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet.metering.counting.events import QuotaSignal
from fleet.metering.wire.signals import MAX_VALUE, REPEAT_AFTER, SignalTracker, classify

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UNIFIED = "anthropic-ratelimit-unified"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        # Anthropic subscription windows.
        (f"{UNIFIED}-5h-utilization", (UNIFIED, "5h", "utilization")),
        (f"{UNIFIED}-5h-reset", (UNIFIED, "5h", "reset")),
        (f"{UNIFIED}-5h-status", (UNIFIED, "5h", "status")),
        (f"{UNIFIED}-7d-utilization", (UNIFIED, "7d", "utilization")),
        (f"{UNIFIED}-7d_opus-utilization", (UNIFIED, "7d_opus", "utilization")),
        (f"{UNIFIED}-7d_sonnet-reset", (UNIFIED, "7d_sonnet", "reset")),
        (f"{UNIFIED}-status", (UNIFIED, None, "status")),
        (f"{UNIFIED}-reset", (UNIFIED, None, "reset")),
        (f"{UNIFIED}-representative-claim", (UNIFIED, None, "representative-claim")),
        (f"{UNIFIED}-fallback-percentage", (UNIFIED, None, "fallback-percentage")),
        ("Anthropic-RateLimit-Unified-5H-Utilization", (UNIFIED, "5h", "utilization")),
        # Anthropic API-key limits.
        (
            "anthropic-ratelimit-requests-remaining",
            ("anthropic-ratelimit", None, "requests-remaining"),
        ),
        ("anthropic-ratelimit-tokens-reset", ("anthropic-ratelimit", None, "tokens-reset")),
        (
            "anthropic-ratelimit-input-tokens-limit",
            ("anthropic-ratelimit", None, "input-tokens-limit"),
        ),
        # Codex subscription windows.
        ("x-codex-primary-used-percent", ("x-codex", "primary", "used-percent")),
        ("x-codex-secondary-window-minutes", ("x-codex", "secondary", "window-minutes")),
        ("x-codex-primary-reset-at", ("x-codex", "primary", "reset-at")),
        ("x-codex-secondary-reset-after-seconds", ("x-codex", "secondary", "reset-after-seconds")),
        ("x-codex-credits-balance", ("x-codex", None, "credits-balance")),
        # OpenAI-style limits.
        ("x-ratelimit-remaining-tokens", ("x-ratelimit", None, "remaining-tokens")),
        ("x-ratelimit-reset-requests", ("x-ratelimit", None, "reset-requests")),
        ("X-RateLimit-Limit-Requests", ("x-ratelimit", None, "limit-requests")),
    ],
)
def test_classify_rate_limit_headers(name: str, kind: tuple[str, str | None, str]) -> None:
    """Each family is recognised, case-insensitively, with its window where it has one."""
    assert classify(name) == kind


@pytest.mark.parametrize(
    "name",
    [
        "content-type",
        "retry-after",
        "request-id",
        "x-request-id",
        "anthropic-organization-id",
        "anthropic-ratelimit",  # the family name alone is no header of it
        "x-ratelimitremaining",
        "x-codex",
        "openai-processing-ms",
        "x-ratelimit",
    ],
)
def test_classify_ignores_other_headers(name: str) -> None:
    """Headers outside the four families are not quota signals."""
    assert classify(name) is None


def test_extract_turns_headers_into_signals() -> None:
    """Rate-limit headers become rows with lower-case names and parsed window/metric;
    other headers are left out."""
    headers = {
        "Content-Type": "text/event-stream",
        "Anthropic-Ratelimit-Unified-5h-Utilization": "0.42",
        "anthropic-ratelimit-unified-status": "allowed",
        "request-id": "req_1",
    }
    signals = SignalTracker().extract(headers, agent="coder-1", provider="anthropic", at=T0)
    assert signals == [
        QuotaSignal(
            T0,
            "coder-1",
            "anthropic",
            UNIFIED,
            f"{UNIFIED}-5h-utilization",
            "0.42",
            "5h",
            "utilization",
        ),
        QuotaSignal(
            T0, "coder-1", "anthropic", UNIFIED, f"{UNIFIED}-status", "allowed", None, "status"
        ),
    ]


def test_an_unchanged_value_is_written_again_only_after_repeat_after() -> None:
    """The same value is skipped until REPEAT_AFTER seconds after it was last written;
    a changed value is written at once."""
    tracker = SignalTracker()
    name = "x-codex-primary-used-percent"

    def values(seconds: float, value: str) -> list[str]:
        at = T0 + timedelta(seconds=seconds)
        found = tracker.extract({name: value}, agent="a", provider="openai", at=at)
        return [signal.value for signal in found]

    # Whole seconds, so the timestamps' differences are exact.
    assert REPEAT_AFTER == 60
    assert values(0, "10") == ["10"]
    assert values(1, "10") == []
    assert values(59, "10") == []
    assert values(59, "11") == ["11"]  # changed: written, and the minute starts again
    assert values(60, "11") == []
    assert values(118, "11") == []
    assert values(119, "11") == ["11"]  # exactly REPEAT_AFTER after it was written
    assert values(120, "10") == ["10"]  # back to an earlier value is a change


def test_dedup_is_per_provider_agent_and_header() -> None:
    """The same header and value from another agent or provider is its own signal."""
    tracker = SignalTracker()
    headers = {"x-ratelimit-remaining-tokens": "9000"}

    def count(agent: str, provider: str) -> int:
        return len(tracker.extract(headers, agent=agent, provider=provider, at=T0))

    assert count("a", "openai") == 1
    assert count("a", "openai") == 0
    assert count("b", "openai") == 1
    assert count("a", "local") == 1
    other = {"x-ratelimit-remaining-requests": "9000"}
    assert len(tracker.extract(other, agent="a", provider="openai", at=T0)) == 1


def test_header_name_case_does_not_defeat_dedup() -> None:
    """A header sent in another case is the same header."""
    tracker = SignalTracker()
    first = tracker.extract({"X-Codex-Primary-Used-Percent": "5"}, agent="a", provider="o", at=T0)
    again = tracker.extract({"x-codex-primary-used-percent": "5"}, agent="a", provider="o", at=T0)
    assert [signal.name for signal in first] == ["x-codex-primary-used-percent"]
    assert again == []


def test_values_longer_than_max_value_are_skipped() -> None:
    """A value over MAX_VALUE characters is no quota signal; MAX_VALUE itself is."""
    tracker = SignalTracker()
    headers = {
        "x-ratelimit-reset-tokens": "x" * (MAX_VALUE + 1),
        "x-ratelimit-reset-requests": "y" * MAX_VALUE,
    }
    signals = tracker.extract(headers, agent="a", provider="openai", at=T0)
    assert [(signal.name, len(signal.value)) for signal in signals] == [
        ("x-ratelimit-reset-requests", MAX_VALUE)
    ]


def test_a_skipped_long_value_does_not_hide_the_next_short_one() -> None:
    """A too-long value is not remembered, so the next real value is written."""
    tracker = SignalTracker()
    name = "anthropic-ratelimit-tokens-remaining"
    tracker.extract({name: "9" * (MAX_VALUE + 1)}, agent="a", provider="anthropic", at=T0)
    signals = tracker.extract({name: "1000"}, agent="a", provider="anthropic", at=T0)
    assert [signal.value for signal in signals] == ["1000"]
