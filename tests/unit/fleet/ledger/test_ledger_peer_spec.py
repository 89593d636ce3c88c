"""Tests for an agent's peer settings in the ledger's spec codec (fleet.ledger.records.rows):
`purpose`, `talks_to`, `wake` and `messages_per_hour` come back as saved, so an agent the
ledger holds keeps them, and rows saved before they existed still load."""

from __future__ import annotations

from dataclasses import replace

from fleet.ledger import Ledger
from fleet.model import AgentSpec, DesiredState
from fleet.names import AgentName


async def test_the_peer_settings_round_trip(ledger: Ledger) -> None:
    spec = AgentSpec(
        name=AgentName("coder"),
        runtime="stub",
        purpose="writes the payments service",
        talks_to=(AgentName("reviewer"), AgentName("tester")),
        wake="start",
        messages_per_hour=7,
    )
    await ledger.agents.upsert_agent(spec, DesiredState.RUNNING)
    record = await ledger.agents.get_agent("coder")
    assert record is not None and record.spec == spec


async def test_a_row_saved_before_peers_loads_with_none(ledger: Ledger) -> None:
    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("old"), runtime="stub"), DesiredState.RUNNING
    )
    record = await ledger.agents.get_agent("old")
    assert record is not None
    keys = ("purpose", "talks_to", "wake", "messages_per_hour")
    old = replace(record, extra={k: v for k, v in record.extra.items() if k not in keys})
    spec = old.spec
    assert (spec.purpose, spec.talks_to, spec.wake, spec.messages_per_hour) == (
        None,
        (),
        "wait",
        30,
    )
    junk = replace(record, extra={**old.extra, "wake": "later", "messages_per_hour": True})
    assert (junk.spec.wake, junk.spec.messages_per_hour) == ("wait", 30)
