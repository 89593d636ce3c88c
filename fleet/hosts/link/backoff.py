"""How long a host link waits before its next connection attempt: capped exponential
backoff with jitter, decided without a clock (the link sleeps).

The n-th wait since the last success is ``first * 2**n``, capped at ``cap``, moved by up to
±``jitter`` of itself so that links cut by the same outage do not retry in step, and never
below ``first`` nor above ``cap``: with the defaults, about 1 s, 2 s, 4 s, … 30 s.
"""

from __future__ import annotations

import random


class Backoff:
    """The waits between attempts; :meth:`reset` after a success."""

    def __init__(
        self,
        first: float = 1.0,
        cap: float = 30.0,
        *,
        factor: float = 2.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"backoff needs 0 < first <= cap, found first={first}, cap={cap}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), found {jitter}")
        self.first = first
        self.cap = cap
        self._factor = factor
        self._jitter = jitter
        self._rng = rng if rng is not None else random.Random()
        self._failures = 0

    def next(self) -> float:
        """The wait before the next attempt, counting one more failure."""
        # The exponent stops growing once the cap is reached: no overflow after days down.
        base = self.cap
        if self._failures < 64:
            base = min(self.cap, self.first * self._factor**self._failures)
        self._failures += 1
        spread = 1 + self._jitter * (2 * self._rng.random() - 1)
        return min(self.cap, max(self.first, base * spread))

    def reset(self) -> None:
        """Back to the first wait (a connection succeeded)."""
        self._failures = 0
