"""Where a webhook delivery's time goes in Fleetwarden's intake: the goals of issue 73 judged
on the measured cells, and the accepted path taken apart.

The steps of the accepted path, each timed alone with ``perf_counter`` marks, in the order
the endpoint (:mod:`fleet.forge.events.endpoint`) takes them, on fresh signed deliveries,
with the bench's ledger and logging: the headers read; the signature checked (HMAC-SHA256
over the body); the payload read (the hostile-JSON reader) into an event; its staleness
judged; the body's digest and the event kept as JSON; the take (digest and delivery id
claimed in the ledger, committed); the log line through the app's redacting filter, as the
endpoint writes it. Beside them, each party's whole handler as aiohttp calls it, timed in a
burst of its own one at a time: what the steps leave out of the handler is the body's read
and the answer; what the handler leaves out of a delivery's latency is aiohttp's and the
client's, the same for both parties.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from fleet.forge.events.delivery import DeliveryHeaders, stale
from fleet.forge.events.kept import kept
from fleet.forge.events.webhooks import payload_event
from fleet.forge.model import ForgeEvent
from fleet.forge.schema import ForgeEntry
from fleet.ledger import Ledger

GOAL_RATIO = 2.0
"""Fleetwarden's p50 over the floor's, new deliveries one at a time, at most."""
GOAL_RATE = 2000.0
"""New deliveries a second with 16 in flight, at least."""
STEPS = (
    "headers read",
    "signature (HMAC-SHA256)",
    "payload read into an event",
    "staleness",
    "digest and kept event",
    "take (ledger, committed)",
    "log line (redacted)",
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
endpoint_log = logging.getLogger("fleet.forge.events.endpoint")


@dataclass
class Stages:
    """Each step's p50 (µs) and each party's whole handler's p50 (µs)."""

    steps: dict[str, float]
    handlers: dict[str, float]


def goal_lines(runs: Sequence[tuple[float, float]]) -> list[str]:
    """The two goals, each with its figure in every run (``(p50 ratio, rate)`` each), met
    only when met in every run."""
    ratios = [r for r, _ in runs]
    rates = [s for _, s in runs]
    shown_ratios = ", ".join(f"{r:.2f}×" for r in ratios)
    shown_rates = ", ".join(f"{s:,.0f}/s" for s in rates)
    return [
        f"goal: p50 ≤ {GOAL_RATIO:.1f}× the floor's (new deliveries, 1 in flight), every run — "
        f"{shown_ratios} {'met' if max(ratios) <= GOAL_RATIO else 'missed'}",
        f"goal: ≥ {GOAL_RATE:,.0f} deliveries/s at 16 in flight (new deliveries), every run — "
        f"{shown_rates} {'met' if min(rates) >= GOAL_RATE else 'missed'}",
    ]


def met(p50_ratio: float, per_second: float) -> bool:
    return p50_ratio <= GOAL_RATIO and per_second >= GOAL_RATE


def timed(handler: Handler, into: list[float]) -> Handler:
    """``handler``, its time (µs) added to ``into`` at each call."""

    async def timing(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            into.append((time.perf_counter() - started) * 1e6)

    return timing


async def steps(
    ledger: Ledger,
    batch: Sequence[tuple[dict[str, str], bytes]],
    *,
    forge: str,
    entry: ForgeEntry,
    secret: bytes,
) -> dict[str, float]:
    """Each step of the accepted path over ``batch`` (fresh deliveries): its p50 (µs)."""
    marks: dict[str, list[float]] = {step: [] for step in STEPS}
    for headers, body in batch:
        at = [time.perf_counter()]
        said = DeliveryHeaders.read(entry.kind, headers)
        at.append(time.perf_counter())
        said.check(secret, body)
        at.append(time.perf_counter())
        event: ForgeEvent = payload_event(forge, said, body, entry=entry)
        at.append(time.perf_counter())
        if stale(event, datetime.now(UTC), entry.max_event_age_seconds):
            raise ValueError("a fresh delivery judged stale")
        at.append(time.perf_counter())
        digest = "body:" + hashlib.sha256(event.name.encode() + b"\n" + body).hexdigest()
        text = kept(event)
        at.append(time.perf_counter())
        if not await ledger.forge.take_delivery(forge, event.delivery, event.name, text, digest):
            raise ValueError("a fresh delivery found taken")
        at.append(time.perf_counter())
        endpoint_log.info(
            "webhook %s delivery %s (%s): %s", forge, event.delivery, event.name, "counted"
        )
        at.append(time.perf_counter())
        for step, start, end in zip(STEPS, at[:-1], at[1:], strict=True):
            marks[step].append((end - start) * 1e6)
    return {step: statistics.median(values) for step, values in marks.items()}


def stage_lines(stages: Stages) -> list[str]:
    """Where the time goes: the steps, their sum, and the handlers."""
    lines = ["", "where the time goes: the accepted path, p50 per step (µs)"]
    lines += [f"  {step:<28}{value:>7.1f}" for step, value in stages.steps.items()]
    lines.append(f"  {'sum of the steps':<28}{sum(stages.steps.values()):>7.1f}")
    lines += [
        f"  {'handler, ' + party:<28}{value:>7.1f}" for party, value in stages.handlers.items()
    ]
    return lines
