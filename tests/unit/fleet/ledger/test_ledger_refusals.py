"""Tests for the ledger's refusals counted by when (``egress_refusal_times``): a span's
count is the refusals counted in it, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock


async def test_refusals_are_counted_per_span(ledger: Ledger, clock: ManualClock) -> None:
    """Refusals before a span, in it (the same destination again too) and of another agent:
    only this agent's in the span count; the per-destination totals still hold them all."""
    await ledger.refusals.add_refusals("coder", "egress", "registry.npmjs.org:443", "not allowed")
    clock.advance(30)
    since = clock.now()
    await ledger.refusals.add_refusals(
        "coder", "egress", "registry.npmjs.org:443", "not allowed", 2
    )
    await ledger.refusals.add_refusals("coder", "git", "app refs/heads/main", "protected")
    await ledger.refusals.add_refusals("other", "egress", "example.com:443", "not allowed", 5)
    clock.advance(0.5)
    await ledger.refusals.add_refusals("coder", "egress", "registry.npmjs.org:443", "not allowed")
    until = clock.now()
    clock.advance(30)
    await ledger.refusals.add_refusals("coder", "egress", "registry.npmjs.org:443", "not allowed")
    assert await ledger.refusals.refused_between("coder", since, until) == 4
    assert await ledger.refusals.refused_between("coder", since - timedelta(seconds=31), until) == 5
    assert await ledger.refusals.refused_between("nobody", since, until) == 0
    assert (await ledger.refusals.refusal_totals())["coder"] == 6
