"""Tests for an agent's repository in the ledger's spec codec (fleet.ledger.records.rows): `repo`
and `repo_base` come back as saved, and rows saved before they existed still load."""

from __future__ import annotations

from dataclasses import replace

from fleet.ledger import Ledger
from fleet.model import AgentSpec, DesiredState
from fleet.names import AgentName


async def test_repo_and_base_round_trip(ledger: Ledger) -> None:
    """An agent on a repository, from a given base, is stored and read back whole."""
    spec = AgentSpec(name=AgentName("coder"), runtime="stub", repo="app", repo_base="develop")
    await ledger.agents.upsert_agent(spec, DesiredState.RUNNING)
    record = await ledger.agents.get_agent("coder")
    assert record is not None and record.spec == spec


async def test_a_row_saved_before_repositories_loads_without_one(ledger: Ledger) -> None:
    """Without the keys in its stored extras, the spec has no repository and no base."""
    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("old"), runtime="stub"), DesiredState.RUNNING
    )
    record = await ledger.agents.get_agent("old")
    assert record is not None
    extra = {k: v for k, v in record.extra.items() if k not in ("repo", "repo_base")}
    old = replace(record, extra=extra)
    assert (old.spec.repo, old.spec.repo_base) == (None, None)
    assert replace(record, extra={**extra, "repo": 7}).spec.repo is None  # junk: none


async def test_a_review_agents_read_only_workdir_is_kept(ledger: Ledger) -> None:
    """A review agent's run works in a read-only checkout: a restart of it from the ledger
    keeps it read-only; a row saved before reads as writable."""
    spec = AgentSpec(name=AgentName("reviewer"), runtime="stub", workdir_read_only=True)
    await ledger.agents.upsert_agent(spec, DesiredState.RUNNING)
    record = await ledger.agents.get_agent("reviewer")
    assert record is not None and record.spec == spec
    extra = {k: v for k, v in record.extra.items() if k != "workdir_read_only"}
    assert not replace(record, extra=extra).spec.workdir_read_only
