"""How much room an account has, for placing a pooled agent's new run.

A window's **even-spread line** is the share of it that would be used by now if use were
spread evenly across it: the elapsed fraction of the window. An account's **room** is the
smallest margin, over its current windows, between that line and what is used — its
tightest window decides. An account whose windows reset long ago, or that reported none,
has the whole of them: room 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from fleet.accounts.quota import QuotaStatus, QuotaWindow


def even_line(window: QuotaWindow, now: datetime) -> float | None:
    """The fraction of ``window`` an even spread would have used by ``now``; ``None`` when
    its length or reset is unknown (API-key limits), whose line is the whole window."""
    if window.length is None or window.resets_at is None or window.length.total_seconds() <= 0:
        return None
    left = (window.resets_at - now).total_seconds() / window.length.total_seconds()
    return min(max(1.0 - left, 0.0), 1.0)


def current(window: QuotaWindow, now: datetime) -> bool:
    """Whether ``window`` still describes the present (it has not reset since)."""
    return window.resets_at is None or window.resets_at > now


def margin(window: QuotaWindow, now: datetime) -> float:
    """How far under its line ``window`` is (negative: over it); a rejected window has
    none at all."""
    if window.status is QuotaStatus.REJECTED:
        return -1.0
    line = even_line(window, now)
    return (1.0 if line is None else line) - window.used


def room(windows: Iterable[QuotaWindow], now: datetime) -> float:
    """The account's room: its tightest current window's margin (1 with none)."""
    return min((margin(w, now) for w in windows if current(w, now)), default=1.0)
