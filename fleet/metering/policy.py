"""The policy hook: before a model request is forwarded, the proxy asks for a verdict, then
reserves an estimate of its cost (settled to the real usage when its answer ends).

* :class:`Allow` — forward as is;
* :class:`Rewrite` — forward with another model (e.g. one rung down a downgrade ladder);
  the ledger keeps both the asked-for and the served model;
* :class:`Hold` — wait until a time, then ask again (a queue); a wait beyond the proxy's
  ``max_hold`` is refused instead;
* :class:`Refuse` — answer 429 in the provider's error shape, with ``retry-after`` (or,
  for a request no wait would let through, e.g. a model without a price under a budget in
  dollars, 400 without it).

``decide``, ``reserve`` and ``settle`` are called on the proxy's event loop for every model
request: they answer from memory (a pacing job refreshes what the policy knows), never block
or await. ``reserve`` answers :class:`Refuse` when the request would start past a hard limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from fleet.names import AgentName


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the policy knows about a request."""

    agent: AgentName
    provider: str
    api: str
    model: str | None
    stream: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Allow:
    pass


@dataclass(frozen=True, slots=True)
class Rewrite:
    model: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Hold:
    until: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Refuse:
    retry_after: float  # seconds
    reason: str
    status: int = 429  # 400: waiting will not help, the config must change


Verdict = Allow | Rewrite | Hold | Refuse
ALLOW = Allow()
Worst = tuple[int | None, float | None]  # a request's worst case: tokens, USD (None: unbounded)
ESTIMATE_FLOOR: Final = 1.0  # no request reserves nothing: a 0-token estimate is still one


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a request is expected to cost at most: tokens, and USD when priced; ``model``
    is the model it was priced for (the one to be served), ``input`` its input tokens.
    ``worst_tokens`` and ``worst_usd`` bound what it can cost whatever the provider
    answers (:func:`fleet.metering.counting.estimate.worst_case`); ``None``: nothing in the
    request bounds it. ``detached`` names the body key that has the provider work on the
    request after answering it (:func:`fleet.metering.wire.bounds.detached`): its answer will
    not carry its usage."""

    tokens: int
    usd: float | None = None
    model: str | None = None
    input: int = 0
    worst_tokens: int | None = None
    worst_usd: float | None = None
    detached: str | None = None
    bound: Callable[[], Worst] | None = field(default=None, compare=False, repr=False)
    """Works the worst case out when first asked (only a run's cap asks: reading a large
    body for it costs as much as parsing it); ``None``: the two fields say it."""

    def worst(self) -> Worst:
        """``(worst_tokens, worst_usd)``: what the request can cost at most."""
        return (self.worst_tokens, self.worst_usd) if self.bound is None else self.bound()

    def amount(self, unit: str) -> float:
        """The estimate in a budget's unit (``tokens`` or ``usd``)."""
        if unit == "tokens":
            return max(float(self.tokens), ESTIMATE_FLOOR)
        return self.usd or 0.0


@dataclass(frozen=True, slots=True)
class Reservation:
    """A request's claim on a budget until its answer ends."""

    id: int
    budget: str  # the budget's key
    unit: str
    amount: float


class Policy(Protocol):
    def decide(self, request: RequestInfo) -> Verdict: ...

    def reserve(self, request: RequestInfo, estimate: Estimate) -> Reservation | Refuse | None:
        """Claim ``estimate`` on the budget governing the request (``None``: none does)."""
        ...

    def settle(
        self, reservation: Reservation, tokens: int, cost: float | None, *, unmetered: bool = False
    ) -> None:
        """The request's answer ended having used ``tokens`` (and ``cost`` USD);
        ``unmetered``: it was answered but carried no usage the proxy could read, so
        ``tokens`` is at most a floor of what it cost."""
        ...


class AllowAll:
    """Every request goes through unchanged: metering without enforcement."""

    def decide(self, request: RequestInfo) -> Verdict:
        return ALLOW

    def reserve(self, request: RequestInfo, estimate: Estimate) -> Reservation | Refuse | None:
        return None

    def settle(
        self, reservation: Reservation, tokens: int, cost: float | None, *, unmetered: bool = False
    ) -> None:
        return None
