"""Tests for an agent's MCP grants and skills in the ledger's spec codec
(fleet.ledger.records.rows): they come back as saved, so an agent the ledger holds keeps
them across a restart, and rows saved before they existed (or holding junk) load with
none."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fleet.ledger import Ledger
from fleet.model import AgentSpec, DesiredState, McpGrant
from fleet.names import AgentName


async def test_the_grants_and_skills_round_trip(ledger: Ledger) -> None:
    """A grant narrowed to some tools, one to all the server allows, and two skills."""
    spec = AgentSpec(
        name=AgentName("coder"),
        runtime="stub",
        mcp=(McpGrant("tracker", frozenset({"get_issue", "search_issues"})), McpGrant("docs")),
        skills=(Path("/srv/skills/notes"), Path("/srv/skills/review")),
    )
    await ledger.agents.upsert_agent(spec, DesiredState.RUNNING)
    record = await ledger.agents.get_agent("coder")
    assert record is not None and record.spec == spec


async def test_a_row_saved_before_tools_loads_with_none(ledger: Ledger) -> None:
    """No `mcp`/`skills` keys: none; grants that are not grants are dropped, not guessed."""
    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("old"), runtime="stub"), DesiredState.RUNNING
    )
    record = await ledger.agents.get_agent("old")
    assert record is not None
    old = replace(
        record, extra={k: v for k, v in record.extra.items() if k not in ("mcp", "skills")}
    )
    assert (old.spec.mcp, old.spec.skills) == ((), ())
    junk = replace(record, extra={**old.extra, "mcp": ["docs", {"tools": []}, {"server": "ok"}]})
    assert junk.spec.mcp == (McpGrant("ok"),)


async def test_skills_that_are_not_paths_are_dropped(ledger: Ledger) -> None:
    """A `skills` that is a string, a mapping, or holds numbers or relative paths loads
    with only its absolute paths: never one skill per character of a string."""
    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("old"), runtime="stub"), DesiredState.RUNNING
    )
    record = await ledger.agents.get_agent("old")
    assert record is not None
    for junk, kept in [
        ("/srv/skills/notes", ()),
        ({"/srv/skills/notes": 1}, ()),
        ([3, None, "rel/x", "/srv/skills/notes"], (Path("/srv/skills/notes"),)),
    ]:
        assert replace(record, extra={**record.extra, "skills": junk}).spec.skills == kept
