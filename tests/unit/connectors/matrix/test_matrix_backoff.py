"""Tests for connectors.matrix.inbound.backoff: capped exponential delays, shortened only by
jitter."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from connectors.matrix.inbound.backoff import Backoff


class FixedRandom(random.Random):
    """A random source whose ``random()`` always returns ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def delays(backoff: Backoff, count: int) -> list[float]:
    """The next ``count`` delays of ``backoff``."""
    return [backoff.next_delay() for _ in range(count)]


def test_doubles_from_base_up_to_cap_without_jitter() -> None:
    """Delays are 1, 2, 4, 8 s and then the 10 s cap."""
    assert delays(Backoff(jitter=0.0), 7) == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_custom_base_and_cap() -> None:
    """The series starts at ``base`` and stops growing at ``cap``."""
    assert delays(Backoff(base=0.5, cap=3.0, jitter=0.0), 5) == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_counts_failures() -> None:
    """Each delay records one failure."""
    backoff = Backoff()
    delays(backoff, 3)
    assert backoff.failures == 3


def test_reset_starts_again_from_base() -> None:
    """After a success the next failure waits ``base`` again."""
    backoff = Backoff(jitter=0.0)
    delays(backoff, 5)
    backoff.reset()
    assert backoff.failures == 0
    assert delays(backoff, 2) == [1.0, 2.0]


def test_jitter_shortens_by_at_most_its_fraction() -> None:
    """With the largest draw, a delay is cut by nearly ``jitter`` of itself, never lengthened."""
    backoff = Backoff(jitter=0.25, rng=FixedRandom(0.999))
    got = delays(backoff, 5)
    ceilings = [1.0, 2.0, 4.0, 8.0, 10.0]
    for delay, ceiling in zip(got[1:], ceilings[1:], strict=True):
        assert ceiling * 0.75 <= delay < ceiling


def test_jitter_never_below_base() -> None:
    """The first delay, already at ``base``, is not shortened below it."""
    assert Backoff(base=1.0, jitter=0.25, rng=FixedRandom(0.999)).next_delay() == 1.0


def test_zero_draw_gives_full_delay() -> None:
    """A draw of 0 leaves the delay at its ceiling."""
    assert delays(Backoff(rng=FixedRandom(0.0)), 4) == [1.0, 2.0, 4.0, 8.0]


def test_many_failures_stay_at_cap() -> None:
    """Thousands of failures neither overflow nor exceed the cap."""
    backoff = Backoff(jitter=0.0)
    assert delays(backoff, 5000)[-1] == 10.0


@given(
    seed=st.integers(),
    base=st.floats(min_value=0.01, max_value=5.0),
    factor=st.floats(min_value=1.0, max_value=100.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    count=st.integers(min_value=1, max_value=60),
)
def test_delays_between_base_and_ceiling(
    seed: int, base: float, factor: float, jitter: float, count: int
) -> None:
    """Every delay lies in [max(base, ceiling·(1−jitter)), ceiling], ceiling = min(cap, base·2ⁿ)."""
    cap = base * factor
    backoff = Backoff(base=base, cap=cap, jitter=jitter, rng=random.Random(seed))
    for n, delay in enumerate(delays(backoff, count)):
        ceiling = min(cap, base * 2.0**n)
        assert base <= delay <= ceiling
        assert delay >= ceiling * (1 - jitter) - 1e-9
