"""Slack's rate limits as the fake applies them: a token bucket per (method, key).

``chat.postMessage`` is Slack's "special" tier: about one message per second per channel,
short bursts allowed (the fake's burst is a world setting, 1 by default). ``chat.update``
is Tier 3 (50+ per minute) per workspace. An answer over the limit is HTTP 429
``{"ok":false,"error":"ratelimited"}`` with ``Retry-After`` in whole seconds. The clock is
passed in (``now``), so a test can drive it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Bucket", "Limits"]


@dataclass
class Bucket:
    """``rate`` calls per second, ``burst`` at once."""

    rate: float
    burst: int
    level: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> float:
        """0 when a call may go now (and counts it), else seconds until one may."""
        if self.level < 0:
            self.level, self.at = float(self.burst), now
        self.level = min(float(self.burst), self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level >= 1.0:
            self.level -= 1.0
            return 0.0
        return (1.0 - self.level) / self.rate


@dataclass
class Limits:
    """The buckets of one workspace. ``post_rate``/``post_burst``: chat.postMessage per
    channel; ``update_per_minute``: chat.update for the workspace."""

    post_rate: float = 1.0
    post_burst: int = 1
    update_per_minute: int = 50
    buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)

    def retry_after(self, method: str, channel: str, now: float) -> int | None:
        """None when ``method`` on ``channel`` may go now, else whole seconds to wait."""
        if method in ("chat.postMessage", "chat.postEphemeral"):
            key, rate, burst = (method, channel), self.post_rate, self.post_burst
        elif method == "chat.update":
            key = (method, "")
            rate, burst = self.update_per_minute / 60.0, self.update_per_minute
        else:
            return None
        bucket = self.buckets.setdefault(key, Bucket(rate, burst))
        wait = bucket.take(now)
        return None if wait <= 0 else max(1, math.ceil(wait))
