"""Live spend: what each budget has used *now*, between two pacing ticks, including the
requests still in flight — so a hard limit binds on every request, not at the next tick.

The tick reads a budget's ``used`` from the ledger. Between ticks, every model request
that a budget governs first **reserves** an estimate of what it will cost (from its body's
size and its ``max_tokens``, see :mod:`fleet.metering.counting.estimate`); the request is refused
when the budget's live total — ``used`` + what settled since the tick + what is in flight
— has already reached the limit. When the answer ends, the reservation is **settled** to
the real usage. A fleet of N agents sending at once can therefore spend past the limit by
at most what the requests admitted before it was reached use beyond their estimates: one
in-flight request per agent at worst.

Settled amounts are numbered; the tick takes a :meth:`LiveSpend.mark` *before* it reads
the ledger, and afterwards drops what settled up to that mark (the ledger has it: an
answer's usage is committed before it is settled). What settled after the mark may be
counted twice until the next tick — never missed.

Everything here runs on the event loop and answers from memory, in time independent of
how many requests settled since the tick or are in flight: each book keeps its two sums as
it goes (summed afresh at each tick, so a budget in dollars never drifts by more than one
tick's rounding). The several-hosts ledger will make :meth:`reserve` one database
transaction over the same numbers.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field

from fleet.metering.policy import Reservation


@dataclass(slots=True)
class _Book:
    settled: deque[tuple[int, float]] = field(default_factory=deque)  # (mark, amount)
    inflight: dict[int, float] = field(default_factory=dict)
    settled_sum: float = 0.0
    inflight_sum: float = 0.0

    def total(self) -> float:
        return self.settled_sum + self.inflight_sum

    def add(self, reservation: int, amount: float) -> None:
        self.inflight[reservation] = amount
        self.inflight_sum += amount

    def take(self, reservation: int) -> None:
        amount = self.inflight.pop(reservation, None)
        if amount is not None:
            self.inflight_sum = self.inflight_sum - amount if self.inflight else 0.0

    def settle(self, mark: int, amount: float) -> None:
        self.settled.append((mark, amount))
        self.settled_sum += amount

    def rebase(self, mark: int) -> None:
        """Drop what settled up to ``mark`` (in mark order: from the left) and sum afresh."""
        settled = self.settled
        while settled and settled[0][0] <= mark:
            settled.popleft()
        self.settled_sum = math.fsum(amount for _, amount in settled)
        self.inflight_sum = math.fsum(self.inflight.values())


class LiveSpend:
    """Per budget: what settled since the last tick, and what is in flight."""

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}
        self._ids = itertools.count(1)
        self._mark = 0

    def mark(self) -> int:
        """Where the settled amounts stand: call before reading the ledger for a tick."""
        return self._mark

    def rebase(self, key: str, mark: int) -> None:
        """The tick read budget ``key``'s ``used`` after ``mark``: forget what it has."""
        book = self._books.get(key)
        if book is not None:
            book.rebase(mark)

    def forget(self, key: str) -> None:
        """Budget ``key`` is gone; reservations on it settle into nothing."""
        self._books.pop(key, None)

    def extra(self, key: str) -> float:
        """What budget ``key`` has used beyond the tick's ``used``: settled + in flight."""
        book = self._books.get(key)
        return 0.0 if book is None else book.total()

    def reserve(self, key: str, unit: str, amount: float) -> Reservation:
        reservation = Reservation(next(self._ids), key, unit, amount)
        self._books.setdefault(key, _Book()).add(reservation.id, amount)
        return reservation

    def settle(self, reservation: Reservation, actual: float) -> None:
        """The answer ended having used ``actual`` (in the reservation's unit)."""
        book = self._books.get(reservation.budget)
        if book is None:
            return
        book.take(reservation.id)
        if actual > 0:
            self._mark += 1
            book.settle(self._mark, actual)
