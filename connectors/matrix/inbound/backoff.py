"""Capped exponential backoff with jitter for the sync loop (pure: the caller sleeps)."""

from __future__ import annotations

import random


class Backoff:
    """Delays of 1, 2, 4, … seconds up to ``cap``, each shortened by up to ``jitter``.

    Jitter only shortens a delay, and never below ``base``: while the server is down
    the loop makes at most one request per ``base`` seconds. The cap is low on purpose:
    once the homeserver is back, operators wait at most ``cap`` seconds for the bot,
    and one request per ``cap`` seconds costs a down server nothing.
    """

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 10.0,
        jitter: float = 0.25,
        rng: random.Random | None = None,
    ) -> None:
        self._base, self._cap, self._jitter = base, cap, jitter
        self._rng = rng if rng is not None else random.Random()
        self.failures = 0

    def next_delay(self) -> float:
        """Record a failure; the seconds to wait before the next attempt."""
        ceiling = min(self._cap, self._base * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return max(self._base, ceiling * (1 - self._jitter * self._rng.random()))

    def reset(self) -> None:
        """A success: the next failure starts again from ``base``."""
        self.failures = 0
