"""Providers' rate-limit headers: the server's own word on how much of a window is left.

Families kept (names lower case):

* ``anthropic-ratelimit-unified-*`` — subscription windows, e.g.
  ``anthropic-ratelimit-unified-5h-utilization``, ``-7d-reset``, ``-status``;
* ``anthropic-ratelimit-*`` — API-key limits (``requests-remaining``, ``tokens-reset``…);
* ``x-codex-*`` — Codex subscription windows (``primary-used-percent``,
  ``secondary-window-minutes``, ``primary-reset-at``…);
* ``x-ratelimit-*`` — OpenAI-style limits (``remaining-tokens``, ``reset-requests``…).

Headers of those families that are not about quota (Codex's ``x-codex-turn-state``, which
is session state) are not kept. A header is written again only when its value changed or a
minute has passed, so a busy fleet does not write a dozen rows per request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from fleet.accounts.quota import is_quota_header
from fleet.metering.counting.events import QuotaSignal

REPEAT_AFTER: Final = 60.0  # seconds after which an unchanged value is written again
MAX_VALUE: Final = 200  # characters; a longer header value is not a quota signal
_UNIFIED = re.compile(r"anthropic-ratelimit-unified-(?P<window>\d+[a-z]+(?:_[a-z]+)?)-(?P<m>.+)")
_CODEX = re.compile(r"x-codex-(?P<window>primary|secondary)-(?P<m>.+)")
_FAMILIES: Final = (
    "anthropic-ratelimit-unified",
    "anthropic-ratelimit",
    "x-codex",
    "x-ratelimit",
)
_MAX_TRACKED: Final = 10_000


def classify(name: str) -> tuple[str, str | None, str] | None:
    """``(family, window, metric)`` of a rate-limit header, ``None`` for other headers."""
    name = name.lower()
    for family in _FAMILIES:
        if name.startswith(family + "-"):
            break
    else:
        return None
    for pattern in (_UNIFIED, _CODEX):
        match = pattern.fullmatch(name)
        if match:
            return family, match["window"], match["m"]
    return family, None, name.removeprefix(family + "-")


class SignalTracker:
    """Turns response headers into :class:`QuotaSignal` rows worth writing."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], tuple[str, float]] = {}

    def extract(
        self, headers: Mapping[str, str], *, agent: str, provider: str, at: datetime
    ) -> list[QuotaSignal]:
        signals: list[QuotaSignal] = []
        now = at.timestamp()
        for raw_name, value in headers.items():
            kind = classify(raw_name)
            if kind is None or len(value) > MAX_VALUE or not is_quota_header(raw_name):
                continue
            name = raw_name.lower()
            key = (provider, agent, name)
            last = self._last.get(key)
            if last is not None and last[0] == value and now - last[1] < REPEAT_AFTER:
                continue
            if len(self._last) >= _MAX_TRACKED:
                self._last.clear()
            self._last[key] = (value, now)
            family, window, metric = kind
            signals.append(QuotaSignal(at, agent, provider, family, name, value, window, metric))
        return signals
