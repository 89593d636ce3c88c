"""Quota windows per account, normalised: every signal a provider sends about how much of a
window is used becomes one :class:`QuotaWindow`.

Sources (see ``SUBSCRIPTIONS.md`` for the units):

* ``anthropic-ratelimit-unified-<w>-{utilization,reset,status}`` — Claude subscription
  windows (``5h``, ``7d``, ``7d_opus``…), plus the overall ``-status`` and
  ``-representative-claim`` that say which window refused a request;
* ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-*`` — API-key limits;
* ``x-codex-{primary,secondary}-*`` — Codex subscription windows on a ChatGPT login;
* ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` — OpenAI API-key limits;
* Claude Code's ``stream-json`` ``rate_limit_event``.

Everything here is pure: the caller passes the time of observation. A value that does not
parse, or parses to something no provider would send, is dropped — a provider's header is
never a reason to fail a proxied request.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final


class QuotaStatus(enum.StrEnum):
    """What the provider says about a window (Anthropic's words)."""

    ALLOWED = "allowed"
    WARNING = "allowed_warning"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class QuotaWindow:
    """How much of one account's window is used, as last reported."""

    account: str
    window: str  # "5h", "7d", "7d_opus"…; "primary"/"secondary"; "requests", "tokens"…
    used: float  # fraction 0..1, clamped
    resets_at: datetime | None  # aware UTC
    status: QuotaStatus
    observed_at: datetime  # aware UTC
    source: str  # one of the SOURCE_* constants
    length: timedelta | None = None  # None for API-key limits, which have no fixed window


SOURCE_ANTHROPIC_UNIFIED: Final = "anthropic-unified"
SOURCE_ANTHROPIC_API: Final = "anthropic-api"
SOURCE_CODEX: Final = "codex"
SOURCE_OPENAI_API: Final = "openai-api"
SOURCE_CLAUDE_STREAM: Final = "claude-stream"

MAX_VALUE: Final = 200  # characters; a longer value is not a quota signal
# Bounds that tell a plausible value from garbage (or from epoch milliseconds).
_EPOCH_MIN: Final = 946_684_800.0  # 2000-01-01
_EPOCH_MAX: Final = 7_258_118_400.0  # 2200-01-01
_MAX_AHEAD: Final = timedelta(days=400).total_seconds()  # no window is longer than a year
_MAX_COUNT: Final = 1e15

_U: Final = "anthropic-ratelimit-unified"
_UNIFIED = re.compile(_U + r"-(?P<window>[a-z0-9_]+)-(?P<metric>utilization|reset|status)")
_UNIFIED_WINDOW = re.compile(r"(?P<n>\d+)(?P<unit>[hd])(?:_[a-z]+)?", re.ASCII)
_LEGACY_WINDOW = re.compile(r"(?P<base>five_hour|seven_day)(?P<model>_[a-z]+)?")
_LEGACY_BASE: Final = {"five_hour": "5h", "seven_day": "7d"}
# Claude Code's own spelling of the header window "7d_oi" (its bundled code maps them so).
_ALIASES: Final = {"seven_day_overage_included": "7d_oi"}
_STREAM_KEYS: Final = {"utilization": "utilization", "reset": "resetsAt", "status": "status"}
_ANTHROPIC_API = re.compile(
    r"anthropic-ratelimit-(?P<window>requests|tokens|input-tokens|output-tokens)"
    r"-(?P<metric>limit|remaining|reset)"
)
_CODEX = re.compile(
    r"x-codex-(?P<window>primary|secondary)"
    r"-(?P<metric>used-percent|window-minutes|reset-after-seconds|reset-at)"
)
_OPENAI = re.compile(r"x-ratelimit-(?P<metric>limit|remaining|reset)-(?P<window>requests|tokens)")
# Other x-codex-* headers (turn state) are session state, not quota: only these prefixes.
_QUOTA_PREFIXES: Final = (
    "anthropic-ratelimit-",
    "x-codex-primary-",
    "x-codex-secondary-",
    "x-ratelimit-",
)
_DURATION = re.compile(r"(?:\d+(?:\.\d*)?(?:ns|us|µs|ms|s|m|h))+", re.ASCII)
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_STATUSES: Final = {s.value: s for s in QuotaStatus if s is not QuotaStatus.UNKNOWN}


def is_quota_header(name: str) -> bool:
    """Whether a response header carries quota information worth keeping."""
    return name.strip().lower().startswith(_QUOTA_PREFIXES)


def from_headers(headers: Mapping[str, str], *, account: str, at: datetime) -> list[QuotaWindow]:
    """Every quota window a provider's response headers describe."""
    fields: dict[str, str] = {}
    for name, value in headers.items():
        if is_quota_header(name) and isinstance(value, str) and len(value) <= MAX_VALUE:
            fields[name.strip().lower()] = value.strip()
    return [
        *_unified(fields, account, at),
        *_limits(_grouped(fields, _ANTHROPIC_API), account, at, SOURCE_ANTHROPIC_API),
        *_codex(fields, account, at),
        *_limits(_grouped(fields, _OPENAI), account, at, SOURCE_OPENAI_API),
    ]


def from_stream_event(event: Mapping[str, Any], *, account: str, at: datetime) -> list[QuotaWindow]:
    """The window a Claude Code ``rate_limit_event`` reports; ``[]`` for any other event.

    Its ``rate_limit_info`` holds ``status``, ``resetsAt`` (epoch seconds), ``rateLimitType``
    (``five_hour``…) and, only once a warning threshold is passed, ``utilization``: a plain
    ``allowed`` event says nothing about how much is used, so it gives no window.
    """
    # Callers hand over whatever a JSON line decoded to; only a mapping can be the event.
    is_event = isinstance(event, Mapping) and event.get("type") == "rate_limit_event"
    info = event.get("rate_limit_info") if is_event else None
    if not isinstance(info, Mapping) or not isinstance(info.get("rateLimitType"), str):
        return []
    window = _unified_name(info["rateLimitType"].lower())
    said = {k: info.get(v) for k, v in _STREAM_KEYS.items()}
    found = window and _unified_window(window, said, account, at, SOURCE_CLAUDE_STREAM)
    return [found] if found else []


def merge(
    old: Mapping[tuple[str, str], QuotaWindow], new: Iterable[QuotaWindow]
) -> dict[tuple[str, str], QuotaWindow]:
    """The latest window per ``(account, window)``; an older observation never replaces a
    newer one (one of the same instant does, as the ledger's upsert does)."""
    merged = dict(old)
    for window in new:
        key = (window.account, window.window)
        held = merged.get(key)
        if held is None or window.observed_at >= held.observed_at:
            merged[key] = window
    return merged


def _grouped(fields: Mapping[str, str], pattern: re.Pattern[str]) -> dict[str, dict[str, str]]:
    groups: dict[str, dict[str, str]] = {}
    for name, value in fields.items():
        match = pattern.fullmatch(name)
        if match:
            groups.setdefault(match["window"], {})[match["metric"]] = value
    return groups


def _unified(fields: Mapping[str, str], account: str, at: datetime) -> list[QuotaWindow]:
    groups: dict[str, dict[str, str]] = {}
    for raw, metrics in _grouped(fields, _UNIFIED).items():
        window = _unified_name(raw)
        if window is not None:  # "overage" and the like share the prefix but are no window
            groups.setdefault(window, {}).update(metrics)
    if fields.get(f"{_U}-status", "").lower() == QuotaStatus.REJECTED:
        # The overall status names no window; the representative claim says which one
        # refused. Without a (known) claim, every window is suspect.
        claim = _unified_name(fields.get(f"{_U}-representative-claim", "").lower())
        if claim is not None:
            inherited = groups.setdefault(claim, {})
            if f"{_U}-reset" in fields:
                inherited.setdefault("reset", fields[f"{_U}-reset"])
        for window in [claim] if claim is not None else list(groups):
            groups[window].setdefault("status", QuotaStatus.REJECTED.value)
    windows = (
        _unified_window(w, m, account, at, SOURCE_ANTHROPIC_UNIFIED) for w, m in groups.items()
    )
    return [w for w in windows if w is not None]


def _unified_name(raw: str) -> str | None:
    """``5h``/``7d_opus`` as they are; the legacy ``five_hour``/``seven_day_opus`` mapped."""
    if _UNIFIED_WINDOW.fullmatch(raw):
        return raw
    if raw in _ALIASES:
        return _ALIASES[raw]
    legacy = _LEGACY_WINDOW.fullmatch(raw)
    return None if legacy is None else _LEGACY_BASE[legacy["base"]] + (legacy["model"] or "")


def _unified_window(
    window: str, said: Mapping[str, object], account: str, at: datetime, source: str
) -> QuotaWindow | None:
    """One subscription window from its ``utilization``, ``reset`` and ``status``."""
    status = _status(said.get("status"))
    # Sent as a fraction; a percentage (1 < x <= 100) is taken too, as relays of it vary.
    used = _number(said.get("utilization"), 0, 100)
    if used is None and status is not QuotaStatus.REJECTED:
        return None
    used = 1.0 if used is None else _clamp(used / 100 if used > 1 else used)
    match = _UNIFIED_WINDOW.fullmatch(window)
    length = None
    if match:
        n = int(match["n"])
        length = timedelta(hours=n) if match["unit"] == "h" else timedelta(days=n)
    return QuotaWindow(account, window, used, _epoch(said.get("reset")), status, at, source, length)


def _limits(
    groups: Mapping[str, Mapping[str, str]], account: str, at: datetime, source: str
) -> list[QuotaWindow]:
    """Count limits (API keys): used is the share of ``limit`` not ``remaining``."""
    found: list[QuotaWindow] = []
    for window, metrics in groups.items():
        limit = _number(metrics.get("limit"), 1e-9, _MAX_COUNT)
        remaining = _number(metrics.get("remaining"), 0, _MAX_COUNT)
        if limit is None or remaining is None:
            continue
        reset = metrics.get("reset")
        if source == SOURCE_ANTHROPIC_API:
            resets_at = _rfc3339(reset)
        else:
            after = _duration(reset)
            resets_at = None if after is None else at + after
        status = QuotaStatus.REJECTED if remaining == 0 else QuotaStatus.UNKNOWN
        used = _clamp(1.0 - remaining / limit)
        found.append(QuotaWindow(account, window, used, resets_at, status, at, source))
    return found


def _codex(fields: Mapping[str, str], account: str, at: datetime) -> list[QuotaWindow]:
    found: list[QuotaWindow] = []
    for window, metrics in _grouped(fields, _CODEX).items():
        percent = _number(metrics.get("used-percent"), 0, 100)
        if percent is None:
            continue
        # Both spellings of the reset have been seen; the absolute one does not drift.
        resets_at = _epoch(metrics.get("reset-at"))
        after = _number(metrics.get("reset-after-seconds"), 0, _MAX_AHEAD)
        if resets_at is None and after is not None:
            resets_at = at + timedelta(seconds=after)
        minutes = _number(metrics.get("window-minutes"), 1e-9, _MAX_AHEAD / 60)
        length = None if minutes is None else timedelta(minutes=minutes)
        status = QuotaStatus.REJECTED if percent >= 100 else QuotaStatus.ALLOWED
        found.append(
            QuotaWindow(account, window, percent / 100, resets_at, status, at, SOURCE_CODEX, length)
        )
    return found


def _number(value: object, low: float, high: float) -> float | None:
    """A number in ``[low, high]`` from a header's text or a JSON value, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None  # JSON's true is not 1
    if isinstance(value, str) and len(value) > MAX_VALUE:
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if low <= number <= high else None  # the bounds also drop NaN and infinity


def _clamp(fraction: float) -> float:
    return min(max(fraction, 0.0), 1.0)


def _status(value: object) -> QuotaStatus:
    known = _STATUSES.get(value.strip().lower()) if isinstance(value, str) else None
    return known or QuotaStatus.UNKNOWN


def _epoch(value: object) -> datetime | None:
    number = _number(value, _EPOCH_MIN, _EPOCH_MAX)
    return None if number is None else datetime.fromtimestamp(number, UTC)


def _rfc3339(value: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value or "")
        # RFC 3339 always has an offset; a time without one would be a guess.
        when = None if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return when if when is not None and _EPOCH_MIN <= when.timestamp() <= _EPOCH_MAX else None


def _duration(value: str | None) -> timedelta | None:
    """OpenAI's Go-style duration (``6m0s``, ``20ms``, ``1h2m3.5s``)."""
    if value is None or not _DURATION.fullmatch(value):
        return None
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(value))
    return timedelta(seconds=seconds) if seconds <= _MAX_AHEAD else None
