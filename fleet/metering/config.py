"""The metering proxy's settings: what tokens cost, and the proxy's own knobs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from fleet.connections.limits import Limits
from fleet.metering.counting.events import Tokens

PER_MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens of each kind."""

    input: float
    output: float
    cache_read: float = 0.0
    cache_write: float = 0.0

    def cost(self, tokens: Tokens) -> float:
        return (
            tokens.input * self.input
            + tokens.output * self.output
            + tokens.cache_read * self.cache_read
            + tokens.cache_write * self.cache_write
        ) / PER_MILLION


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by model name, exactly as the provider reports the model. A model that is not
    here costs ``fallback`` (the config's ``price_default``) when one is set; without it,
    it has no price: its usage is kept as tokens only, never priced by a guess, and a
    budget in dollars refuses its requests (:mod:`fleet.budgets.pacing.policy`)."""

    prices: Mapping[str, Price] = field(default_factory=dict)
    fallback: Price | None = None

    def cost(self, models: tuple[str | None, ...], tokens: Tokens) -> float | None:
        """The cost of ``tokens`` at the first of ``models`` with a price, else at the
        fallback, else ``None``."""
        price = next((self.prices[m] for m in models if m is not None and m in self.prices), None)
        price = price or self.fallback
        if price is None:
            return None
        value = price.cost(tokens)
        return value if math.isfinite(value) else None

    def priced(self, model: str | None) -> bool:
        """Whether ``model``'s tokens have a price (its own, or the fallback)."""
        return self.fallback is not None or (model is not None and model in self.prices)


@dataclass(frozen=True, slots=True)
class MeteringSettings:
    """The proxy's knobs, from the config's ``metering`` section."""

    port: int = 0  # 0: the port used last time, else any free one
    connect_timeout: float = 10.0  # seconds to reach the upstream
    read_timeout: float = 600.0  # seconds the upstream may stay silent mid-answer
    drain_timeout: float = 120.0  # seconds to keep reading after the agent hung up
    max_hold: float = 900.0  # longest a policy ``hold`` may keep one request waiting
    flush_interval: float = 0.5  # seconds between batched ledger writes
    body_timeout: float = 60.0  # seconds an agent may take to send a request's body
    # Seconds a connection may wait for a request's headers, idle keep-alive included:
    # longer than clients keep idle connections (hyper, under Codex: 90 s), so none of
    # them sends a request on a connection the proxy is closing.
    header_timeout: float = 120.0
    idle_timeout: float = 5.0  # seconds a new connection has to send its first request
    max_connections: int = 1024  # at once, fewer when the open-file limit leaves less
    max_requests_per_agent: int = 64  # one agent's requests in flight at once

    def limits(self) -> Limits:
        """What one client may cost the proxy (:mod:`fleet.connections.admission`)."""
        return Limits(
            header_timeout=self.header_timeout,
            idle_timeout=self.idle_timeout,
            max_connections=self.max_connections,
            max_per_agent=self.max_requests_per_agent,
            # Most descriptors go here, two a connection: the agent's and the provider's.
            fd_share=2 / 3,
            fds_each=2,
        )
