"""What a model request may cost, estimated before it is sent, for its reservation on a
budget (:mod:`fleet.budgets.pacing.live`).

The estimate errs high: every byte of the body's text counts as input (about four bytes a
token, the usual ratio for English and code; images and cached prefixes cost less), and
the output is the request's own cap on it (the largest of ``max_tokens``,
``max_output_tokens``, ``max_completion_tokens``), or :data:`DEFAULT_OUTPUT` when it sets
none. The estimate also carries the request's worst case (:mod:`fleet.metering.wire.bounds`),
which a run's cap reserves, and whether its answer will carry its usage at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from fleet.metering.config import PriceTable
from fleet.metering.counting.events import Tokens
from fleet.metering.policy import Estimate, Worst
from fleet.metering.wire.bounds import detached, largest_cap, worst_case

BYTES_PER_TOKEN: Final = 4
DEFAULT_OUTPUT: Final = 8_192
MAX_OUTPUT: Final = 1_000_000  # a cap asked for beyond any model's is counted as this


def estimate(
    payload: Mapping[str, Any] | None,
    body_size: int,
    model: str | None,
    prices: PriceTable,
) -> Estimate:
    """The estimate for a request whose body is ``body_size`` bytes (``payload`` parsed)."""
    cap = largest_cap(payload) if payload is not None else None
    output = DEFAULT_OUTPUT if cap is None else min(cap, MAX_OUTPUT)
    tokens = Tokens(input=body_size // BYTES_PER_TOKEN, output=output)
    usd = prices.cost((model,), tokens)

    @cache
    def bound() -> Worst:  # walks the whole body: only when a run's cap asks, once
        return worst_case(payload, body_size, model, prices)

    return Estimate(tokens.total, usd, model, tokens.input, detached=detached(payload), bound=bound)
