"""A budget's window in its provider's own words: how much of it is used and when it
resets, read from the quota windows an account reports (``account:`` budgets) or from the
raw quota headers the metering proxy recorded (a budget naming a legacy ``account``:
``anthropic-ratelimit-unified-5h-*``/``-7d-*``, Codex's ``x-codex-primary/secondary-*``).

Pure: the signals, the windows and ``now`` are passed in. Only readings fresher than
:data:`SIGNAL_FRESHNESS` count; without one the budget falls back to our metering
(:mod:`fleet.budgets.service`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from fleet.accounts.quota import QuotaWindow
from fleet.accounts.routing import current
from fleet.ledger.records.budgets import Budget, WindowKind
from fleet.metering.counting.events import QuotaSignal

SIGNAL_FRESHNESS: Final = timedelta(minutes=15)
_CODEX_WINDOWS: Final = ("primary", "secondary")

__all__ = ["SIGNAL_FRESHNESS", "provider_reading"]


def provider_reading(
    budget: Budget, signals: Sequence[QuotaSignal], windows: Sequence[QuotaWindow], now: datetime
) -> tuple[float, datetime | None] | None:
    """``(utilization 0..1, reset)`` of ``budget``'s window in its provider's own words: an
    ``account:`` budget from that account's quota windows, a budget naming a legacy
    ``account`` (``anthropic``, ``openai``) from the raw quota headers."""
    if budget.scope.kind == "account":
        return _account_reading(budget, windows, now)
    return _header_reading(budget, signals, now) if budget.account else None


def _account_reading(
    budget: Budget, windows: Sequence[QuotaWindow], now: datetime
) -> tuple[float, datetime | None] | None:
    """The account's fresh window of the budget's length (Claude's ``5h``/``7d``, Codex's
    primary and secondary windows by their length)."""
    length = budget.window.length
    if budget.window.kind is not WindowKind.ROLLING or length is None:
        return None
    for window in windows:
        fresh = now - window.observed_at <= SIGNAL_FRESHNESS
        same = window.length is not None and abs(window.length - length) <= timedelta(minutes=1)
        if window.account == budget.scope.name and fresh and current(window, now) and same:
            return window.used, window.resets_at
    return None


def _header_reading(
    budget: Budget, signals: Sequence[QuotaSignal], now: datetime
) -> tuple[float, datetime | None] | None:
    """``(utilization 0..1, reset)`` of ``budget``'s window from its account's fresh quota
    headers, or ``None`` when there are none."""
    if budget.window.kind is not WindowKind.ROLLING or budget.window.length is None:
        return None
    minutes = round(budget.window.length.total_seconds() / 60)
    fresh = [s for s in signals if now - s.at <= SIGNAL_FRESHNESS]
    if budget.account == "anthropic":
        window = f"{minutes // 60}h" if minutes % 1440 else f"{minutes // 1440}d"
        values = {
            s.metric: s.value
            for s in fresh
            if s.family == "anthropic-ratelimit-unified" and s.window == window
        }
        utilization = _number(values.get("utilization"))
        if utilization is None:
            return None
        if utilization > 1.0:  # a percentage rather than a fraction
            utilization /= 100
        return min(max(utilization, 0.0), 1.0), _epoch(values.get("reset"))
    if budget.account == "openai":
        for name in _CODEX_WINDOWS:
            values = {
                s.metric: s.value for s in fresh if s.family == "x-codex" and s.window == name
            }
            if _number(values.get("window-minutes")) != minutes:
                continue
            percent = _number(values.get("used-percent"))
            if percent is not None:
                return min(max(percent / 100, 0.0), 1.0), _epoch(values.get("reset-at"))
    return None


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _epoch(text: str | None) -> datetime | None:
    value = _number(text)
    return None if value is None else datetime.fromtimestamp(value, UTC)
