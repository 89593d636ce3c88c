"""Tests for fleet.accounts.quota: providers' quota signals as normalised windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.accounts.quota import (
    SOURCE_ANTHROPIC_API,
    SOURCE_ANTHROPIC_UNIFIED,
    SOURCE_CLAUDE_STREAM,
    SOURCE_CODEX,
    SOURCE_OPENAI_API,
    QuotaStatus,
    QuotaWindow,
    from_headers,
    from_stream_event,
    is_quota_header,
    merge,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RESET = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
U = "anthropic-ratelimit-unified"


def epoch(when: datetime) -> str:
    return str(int(when.timestamp()))


def by_window(windows: list[QuotaWindow]) -> dict[str, QuotaWindow]:
    return {w.window: w for w in windows}


def window(
    name: str = "5h",
    used: float = 0.5,
    resets_at: datetime | None = RESET,
    observed_at: datetime = T0,
    account: str = "acct",
) -> QuotaWindow:
    return QuotaWindow(
        account, name, used, resets_at, QuotaStatus.ALLOWED, observed_at, SOURCE_CODEX
    )


# --- is_quota_header -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"{U}-5h-utilization", True),
        (f"{U}-status", True),
        ("Anthropic-RateLimit-Tokens-Remaining", True),
        ("x-codex-primary-used-percent", True),
        ("X-Codex-Secondary-Reset-At", True),
        ("x-ratelimit-remaining-tokens", True),
        ("x-codex-turn-state", False),
        ("x-codex-credits-balance", False),
        ("request-id", False),
        ("x-request-id", False),
        ("content-type", False),
    ],
)
def test_is_quota_header(name: str, expected: bool) -> None:
    """Quota families are recognised case-insensitively; Codex session state is not quota."""
    assert is_quota_header(name) is expected


def test_turn_state_yields_no_window() -> None:
    """x-codex-turn-state alone (or beside quota headers) never becomes a window."""
    headers = {"x-codex-turn-state": "abc123", "x-codex-primary-used-percent": "10"}
    assert [w.window for w in from_headers(headers, account="a", at=T0)] == ["primary"]
    assert from_headers({"x-codex-turn-state": "50"}, account="a", at=T0) == []


# --- Anthropic subscription --------------------------------------------------------------


def test_unified_windows() -> None:
    """Each unified window gives used, reset (epoch), status, length and the source."""
    headers = {
        f"{U}-5h-utilization": "0.42",
        f"{U}-5h-reset": epoch(RESET),
        f"{U}-5h-status": "allowed",
        f"{U}-7d-utilization": "0.1",
        f"{U}-7d-status": "allowed_warning",
        f"{U}-7d_opus-utilization": "0.9",
        f"{U}-7d_opus-status": "something-new",
        f"{U}-status": "allowed",
        f"{U}-representative-claim": "five_hour",
        f"{U}-fallback-percentage": "0.5",
    }
    got = by_window(from_headers(headers, account="max", at=T0))
    assert set(got) == {"5h", "7d", "7d_opus"}
    assert got["5h"] == QuotaWindow(
        "max",
        "5h",
        0.42,
        RESET,
        QuotaStatus.ALLOWED,
        T0,
        SOURCE_ANTHROPIC_UNIFIED,
        timedelta(hours=5),
    )
    assert (got["7d"].status, got["7d"].resets_at) == (QuotaStatus.WARNING, None)
    assert got["7d"].length == timedelta(days=7)
    assert got["7d_opus"].status is QuotaStatus.UNKNOWN
    assert got["7d_opus"].length == timedelta(days=7)


def test_unified_names_are_case_insensitive_and_legacy_spellings_normalised() -> None:
    """Mixed-case names and five_hour/seven_day/seven_day_opus map to 5h/7d/7d_opus."""
    headers = {
        "Anthropic-RateLimit-Unified-5H-Utilization": "0.3",
        f"{U}-seven_day-utilization": "0.2",
        f"{U}-seven_day_opus-utilization": "0.6",
    }
    got = by_window(from_headers(headers, account="a", at=T0))
    assert {k: w.used for k, w in got.items()} == {"5h": 0.3, "7d": 0.2, "7d_opus": 0.6}


def test_unified_percentage_is_scaled() -> None:
    """A utilization above 1 (up to 100) is read as a percentage."""
    got = from_headers({f"{U}-5h-utilization": "42"}, account="a", at=T0)
    assert got[0].used == pytest.approx(0.42)


def test_unified_status_without_utilization() -> None:
    """A rejected window with no utilization is full; an allowed one is skipped."""
    headers = {f"{U}-5h-status": "rejected", f"{U}-7d-status": "allowed"}
    got = from_headers(headers, account="a", at=T0)
    assert [(w.window, w.used, w.status) for w in got] == [("5h", 1.0, QuotaStatus.REJECTED)]


def test_overage_is_not_a_window() -> None:
    """Headers sharing the unified prefix but naming no window (overage) are ignored."""
    headers = {f"{U}-overage-status": "rejected", f"{U}-overage-reset": epoch(RESET)}
    assert from_headers(headers, account="a", at=T0) == []


def test_rejected_via_representative_claim() -> None:
    """Overall rejected marks the claimed window (with the overall reset), not the others."""
    headers = {
        f"{U}-status": "rejected",
        f"{U}-representative-claim": "seven_day",
        f"{U}-reset": epoch(RESET),
        f"{U}-5h-utilization": "0.3",
        f"{U}-7d-utilization": "0.97",
    }
    got = by_window(from_headers(headers, account="a", at=T0))
    assert got["7d"].status is QuotaStatus.REJECTED
    assert (got["7d"].used, got["7d"].resets_at) == (0.97, RESET)
    assert got["5h"].status is QuotaStatus.UNKNOWN


def test_rejected_claim_creates_the_missing_window() -> None:
    """A claimed window with no headers of its own is reported full and rejected."""
    headers = {f"{U}-status": "rejected", f"{U}-representative-claim": "five_hour"}
    got = from_headers(headers, account="a", at=T0)
    assert [(w.window, w.used, w.status) for w in got] == [("5h", 1.0, QuotaStatus.REJECTED)]


def test_rejected_without_claim_marks_every_window_without_own_status() -> None:
    """Overall rejected with no claim rejects each window that has no status of its own."""
    headers = {
        f"{U}-status": "rejected",
        f"{U}-5h-utilization": "0.5",
        f"{U}-7d-utilization": "0.5",
        f"{U}-7d-status": "allowed",
    }
    got = by_window(from_headers(headers, account="a", at=T0))
    assert got["5h"].status is QuotaStatus.REJECTED
    assert got["7d"].status is QuotaStatus.ALLOWED


# --- Anthropic API key -------------------------------------------------------------------


def test_anthropic_api_limits() -> None:
    """Count limits give used = 1 - remaining/limit and an RFC 3339 reset."""
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2026-11-23T10:00:00Z",
        "anthropic-ratelimit-input-tokens-limit": "1000",
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": "2026-11-23T11:00:00+01:00",
        "anthropic-ratelimit-output-tokens-limit": "1000",
        "anthropic-ratelimit-output-tokens-remaining": "250",
    }
    got = by_window(from_headers(headers, account="key", at=T0))
    assert got["requests"] == QuotaWindow(
        "key",
        "requests",
        pytest.approx(0.02),  # type: ignore[arg-type]
        datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        QuotaStatus.UNKNOWN,
        T0,
        SOURCE_ANTHROPIC_API,
    )
    assert got["input-tokens"].status is QuotaStatus.REJECTED
    assert got["input-tokens"].used == 1.0
    assert got["input-tokens"].resets_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert (got["output-tokens"].used, got["output-tokens"].resets_at) == (0.75, None)
    assert got["output-tokens"].length is None


def test_anthropic_api_needs_limit_and_remaining() -> None:
    """A limit without remaining, or a zero limit, gives no window."""
    headers = {
        "anthropic-ratelimit-tokens-limit": "1000",
        "anthropic-ratelimit-requests-limit": "0",
        "anthropic-ratelimit-requests-remaining": "0",
    }
    assert from_headers(headers, account="a", at=T0) == []


def test_anthropic_api_naive_reset_is_dropped() -> None:
    """An RFC 3339 reset must carry an offset; a naive time is not guessed at."""
    headers = {
        "anthropic-ratelimit-tokens-limit": "100",
        "anthropic-ratelimit-tokens-remaining": "50",
        "anthropic-ratelimit-tokens-reset": "2026-11-23T10:00:00",
    }
    assert from_headers(headers, account="a", at=T0)[0].resets_at is None


# --- Codex -------------------------------------------------------------------------------


def test_codex_windows() -> None:
    """Codex percent is scaled, window-minutes is the length, reset-after is relative."""
    headers = {
        "x-codex-primary-used-percent": "25.5",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-after-seconds": "600",
        "x-codex-secondary-used-percent": "100",
        "x-codex-secondary-window-minutes": "10080",
    }
    got = by_window(from_headers(headers, account="gpt", at=T0))
    assert got["primary"] == QuotaWindow(
        "gpt",
        "primary",
        0.255,
        T0 + timedelta(seconds=600),
        QuotaStatus.ALLOWED,
        T0,
        SOURCE_CODEX,
        timedelta(hours=5),
    )
    assert (got["secondary"].used, got["secondary"].status) == (1.0, QuotaStatus.REJECTED)
    assert got["secondary"].length == timedelta(days=7)


def test_codex_reset_at_preferred_over_reset_after() -> None:
    """With both spellings, the absolute reset-at wins; reset-after fills in when it is bad."""
    both = {
        "x-codex-primary-used-percent": "10",
        "x-codex-primary-reset-at": epoch(RESET),
        "x-codex-primary-reset-after-seconds": "60",
    }
    assert from_headers(both, account="a", at=T0)[0].resets_at == RESET
    bad_at = {**both, "x-codex-primary-reset-at": "soon"}
    assert from_headers(bad_at, account="a", at=T0)[0].resets_at == T0 + timedelta(seconds=60)


# --- OpenAI API --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("1s", 1.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5s", 0.5),
    ],
)
def test_openai_duration_reset(text: str, seconds: float) -> None:
    """x-ratelimit reset durations (Go style) are added to the observation time."""
    headers = {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "40",
        "x-ratelimit-reset-requests": text,
    }
    [got] = from_headers(headers, account="oa", at=T0)
    assert (got.window, got.source, got.status) == ("requests", SOURCE_OPENAI_API, "unknown")
    assert got.used == pytest.approx(0.6)
    assert got.resets_at is not None
    assert (got.resets_at - T0).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "6m0", "m", "1d", "-1s", "1.2.3s", "soon", "1s 2s"])
def test_openai_bad_duration_gives_no_reset(text: str) -> None:
    """An unparseable duration leaves resets_at unknown but keeps the window."""
    headers = {
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": text,
    }
    [got] = from_headers(headers, account="oa", at=T0)
    assert (got.window, got.used, got.resets_at) == ("tokens", 1.0, None)
    assert got.status is QuotaStatus.REJECTED


# --- malformed values --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {f"{U}-5h-utilization": "nan"},
        {f"{U}-5h-utilization": "inf"},
        {f"{U}-5h-utilization": "-0.1"},
        {f"{U}-5h-utilization": "250"},
        {f"{U}-5h-utilization": "half"},
        {f"{U}-5h-utilization": "0." + "1" * 300},
        {"x-codex-primary-used-percent": "101"},
        {"x-codex-primary-used-percent": "1e999"},
        {"x-ratelimit-limit-tokens": "-5", "x-ratelimit-remaining-tokens": "1"},
        {"x-ratelimit-limit-tokens": "10", "x-ratelimit-remaining-tokens": "-1"},
        {"x-ratelimit-limit-tokens": "1e300", "x-ratelimit-remaining-tokens": "1"},
    ],
)
def test_malformed_values_are_skipped(headers: dict[str, str]) -> None:
    """Non-numbers, non-finite, out-of-range and over-long values give no window."""
    assert from_headers(headers, account="a", at=T0) == []


@pytest.mark.parametrize("reset", ["1795432711000", "12", "tomorrow", "nan"])
def test_absurd_epoch_reset_is_dropped(reset: str) -> None:
    """An epoch reset outside 2000..2200 (e.g. milliseconds) is unknown, not misread."""
    headers = {f"{U}-5h-utilization": "0.5", f"{U}-5h-reset": reset}
    assert from_headers(headers, account="a", at=T0)[0].resets_at is None


def test_remaining_above_limit_clamps_to_zero() -> None:
    """used is clamped to 0..1 when remaining exceeds the limit."""
    headers = {"x-ratelimit-limit-tokens": "10", "x-ratelimit-remaining-tokens": "12"}
    assert from_headers(headers, account="a", at=T0)[0].used == 0.0


QUOTA_NAMES = [
    f"{U}-{w}-{m}"
    for w in ("5h", "7d", "7d_opus", "five_hour", "overage")
    for m in ("utilization", "reset", "status")
] + [
    f"{U}-status",
    f"{U}-reset",
    f"{U}-representative-claim",
    *(
        f"anthropic-ratelimit-{w}-{m}"
        for w in ("requests", "tokens", "input-tokens")
        for m in ("limit", "remaining", "reset")
    ),
    *(
        f"x-codex-primary-{m}"
        for m in ("used-percent", "window-minutes", "reset-after-seconds", "reset-at")
    ),
    "x-codex-turn-state",
    *(
        f"x-ratelimit-{m}-{w}"
        for m in ("limit", "remaining", "reset")
        for w in ("requests", "tokens")
    ),
]
NUMBERISH = st.one_of(
    st.text(),
    st.floats().map(str),
    st.integers().map(str),
    st.sampled_from(["rejected", "allowed", "allowed_warning", "1h2m3.5s", "2026-11-23T10:00:00Z"]),
)


@given(st.dictionaries(st.sampled_from(QUOTA_NAMES), NUMBERISH))
def test_from_headers_never_raises_and_used_is_a_fraction(headers: dict[str, str]) -> None:
    """Arbitrary values under the known names never raise and never give used outside 0..1."""
    for got in from_headers(headers, account="a", at=T0):
        assert 0.0 <= got.used <= 1.0
        assert got.resets_at is None or got.resets_at.tzinfo is not None


# --- Claude Code stream ------------------------------------------------------------------


def test_stream_event_with_utilization() -> None:
    """A warning rate_limit_event (the shape Claude Code prints) gives its window."""
    event = {
        "type": "rate_limit_event",
        "rate_limit_info": {
            "status": "allowed_warning",
            "resetsAt": int(RESET.timestamp()),
            "rateLimitType": "five_hour",
            "utilization": 0.42,
            "isUsingOverage": False,
            "surpassedThreshold": 0.4,
        },
        "uuid": "u",
        "session_id": "s",
    }
    assert from_stream_event(event, account="max", at=T0) == [
        QuotaWindow(
            "max",
            "5h",
            0.42,
            RESET,
            QuotaStatus.WARNING,
            T0,
            SOURCE_CLAUDE_STREAM,
            timedelta(hours=5),
        )
    ]


def test_stream_event_rejected_without_utilization_is_full() -> None:
    """A rejected event with no utilization reports its window used up."""
    event = {
        "type": "rate_limit_event",
        "rate_limit_info": {"status": "rejected", "rateLimitType": "seven_day_opus"},
    }
    [got] = from_stream_event(event, account="a", at=T0)
    assert (got.window, got.used, got.status, got.resets_at) == (
        "7d_opus",
        1.0,
        QuotaStatus.REJECTED,
        None,
    )


@pytest.mark.parametrize(
    "event",
    [
        ["rate_limit_event"],
        "rate_limit_event",
        {"type": "assistant", "message": {}},
        {"type": "rate_limit_event"},
        {"type": "rate_limit_event", "rate_limit_info": "nope"},
        {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}},
        {
            "type": "rate_limit_event",
            "rate_limit_info": {
                "status": "allowed",
                "resetsAt": 1795432711,
                "rateLimitType": "five_hour",
            },
        },
        {
            "type": "rate_limit_event",
            "rate_limit_info": {"status": "rejected", "rateLimitType": "overage"},
        },
        {
            "type": "rate_limit_event",
            "rate_limit_info": {"status": "allowed", "rateLimitType": 5, "utilization": 0.5},
        },
        {
            "type": "rate_limit_event",
            "rate_limit_info": {"rateLimitType": "five_hour", "utilization": True},
        },
    ],
)
def test_stream_event_that_says_nothing_gives_nothing(event: Any) -> None:
    """Other events, plain 'allowed' without utilization, and malformed info give []."""
    assert from_stream_event(event, account="a", at=T0) == []


# --- merge ------------------------------------------------------------------


def test_merge_keeps_latest_per_account_and_window() -> None:
    """A newer observation replaces an older one; an older one never replaces a newer."""
    old = window(observed_at=T0, used=0.1)
    newer = window(observed_at=T0 + timedelta(minutes=1), used=0.2)
    other = window(account="other", observed_at=T0 - timedelta(hours=1))
    merged = merge({("acct", "5h"): old}, [newer, other])
    assert merged == {("acct", "5h"): newer, ("other", "5h"): other}
    assert merge(merged, [old])[("acct", "5h")] is newer


def test_merge_does_not_mutate_old() -> None:
    """merge returns a new dict and leaves the one passed in untouched."""
    old = {("acct", "5h"): window(used=0.1)}
    merge(old, [window(used=0.3, observed_at=T0 + timedelta(seconds=1))])
    assert old[("acct", "5h")].used == 0.1
