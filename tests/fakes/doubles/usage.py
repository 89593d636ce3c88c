"""Usage rows as the metering proxy records them, for tests that need some in the ledger:
one metered request, its fields overridable."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from fleet.metering.counting.events import Outcome, Tokens, UsageEvent


def metered(agent: str, at: datetime, **changes: object) -> UsageEvent:
    """One answered, metered request of ``agent`` at ``at`` (100 in, 20 out, unpriced)."""
    made = UsageEvent(
        at=at,
        agent=agent,
        provider="anthropic",
        api="anthropic",
        requested_model="claude-haiku-4-5",
        served_model="claude-haiku-4-5",
        tokens=Tokens(input=100, output=20),
        stream=False,
        status=200,
        outcome=Outcome.OK,
        latency_ms=10.0,
        ttfb_ms=None,
        request_id="req_1",
        cost_usd=None,
        priced=False,
    )
    return replace(made, **changes)  # type: ignore[arg-type]
