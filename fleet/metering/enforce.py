"""The budget policy enforced on one model request: its verdict (holds waited out up to the
proxy's ``max_hold``), the reservation of what the request is estimated to cost, the model
a :class:`~fleet.metering.policy.Rewrite` serves put in its body, and the settlement of
the reservation once its answer has ended.

The proxy calls these around forwarding a metered request; the policy itself
(:mod:`fleet.metering.policy`) answers from memory and never waits — the waiting is here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fleet.metering.config import PriceTable
from fleet.metering.counting.estimate import estimate
from fleet.metering.counting.events import Outcome
from fleet.metering.counting.meter import Meter
from fleet.metering.policy import ALLOW, Hold, Policy, Refuse, RequestInfo, Reservation, Rewrite
from fleet.timing.clock import Clock


async def verdict(
    policy: Callable[[], Policy], info: RequestInfo, clock: Clock, max_hold: float
) -> Hold | Refuse | Rewrite | None:
    """Ask the policy, waiting out holds up to ``max_hold``; ``None`` means allow. The
    policy is asked for anew at each turn: one set while a request is held decides it."""
    waited = 0.0
    while True:
        said = policy().decide(replace(info, at=clock.now()))
        if said is ALLOW or not isinstance(said, Hold):
            return None if not isinstance(said, Refuse | Rewrite) else said
        wait = (said.until - clock.now()).total_seconds()
        if waited + wait > max_hold:
            return Refuse(wait, f"held until {said.until:%H:%M:%S} UTC: {said.reason}")
        waited += max(wait, 0.0)
        await asyncio.sleep(max(wait, 0.0))


def reserve(
    policy: Policy,
    said: Hold | Refuse | Rewrite | None,
    info: RequestInfo,
    payload: dict[str, Any],
    body_size: int,
    prices: PriceTable,
    clock: Clock,
) -> Reservation | Refuse | None:
    """The request's claim on its budget, estimated for the model it will be served: the
    refusal when the verdict was one, ``None`` when no budget governs it."""
    if isinstance(said, Refuse):
        return said
    served = said.model if isinstance(said, Rewrite) else info.model
    cost = estimate(payload, body_size, served, prices)
    return policy.reserve(replace(info, at=clock.now()), cost)


def rewrite(said: Hold | Refuse | Rewrite | None, payload: dict[str, Any], meter: Meter) -> bool:
    """Put the model a rewrite serves in ``payload``, the meter told both models; whether
    the body changed."""
    model = meter.requested_model
    if not isinstance(said, Rewrite) or said.model == model:
        return False
    payload["model"] = said.model
    meter.requested_model, meter.rewritten_from = said.model, model
    return True


def settle(policy: Policy, claim: Reservation, meter: Meter) -> None:
    """Settle ``claim`` to what the answer used, as :attr:`Meter.recorded` has it."""
    used = meter.recorded
    tokens = used.tokens.total if used is not None else 0
    # Answered, but without usage it could read: a floor, not what it cost.
    unmetered = used is not None and used.outcome is Outcome.UNMETERED and used.status < 400
    cost_usd = used.cost_usd if used is not None else None
    policy.settle(claim, tokens, cost_usd, unmetered=unmetered)
