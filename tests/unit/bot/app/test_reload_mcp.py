"""Tests for a `roster reload` (bot.app.reload) of the agents' MCP grants and skills: a
changed `mcp:` or `skills:` of an agent reaches its spec; a changed `mcp:` section, which
the MCP door starts with, refuses the reload whole; a grant the load would refuse is
refused by the reload in the same words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app.reload import NOT_RELOADED, reload_config
from bot.commands.errors import CommandError
from bot.config import Offered, parse_config
from fleet.ledger import Ledger
from fleet.mcp.model import McpGrant
from fleet.names import AgentName
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet
from tests.unit.bot.app.reload_rig import fleet_on

SERVERS = (
    "mcp:\n"
    "  tracker:\n"
    "    url: https://mcp.tracker.example.com/mcp\n"
    "    headers_env: {Authorization: TRACKER_AUTH}\n"
    "    tools: [search_issues, get_issue]\n"
    "  docs:\n"
    "    command: docs-mcp\n"
)
ENVIRON = {"TRACKER_AUTH": "Bearer held-by-fleetwarden"}
BEFORE = SERVERS + "agents:\n  - name: coder\n    mcp: [tracker]\n  - name: reviewer\n"
AFTER = SERVERS + (
    "agents:\n"
    "  - name: coder\n"
    "    mcp:\n"
    "      tracker: {tools: [get_issue]}\n"
    "      docs: {}\n"
    "    skills: [skills/notes]\n"
    "  - name: reviewer\n"
)


@pytest.fixture
async def reload_mcp_fleet(tmp_path: Path, ledger: Ledger) -> AsyncIterator[Fleet]:
    notes = tmp_path / "skills" / "notes"
    notes.mkdir(parents=True)
    (notes / "SKILL.md").write_text("---\nname: notes\ndescription: Takes notes.\n---\n")
    async with fleet_on(tmp_path, ledger, BEFORE, mcp=True) as made:
        yield made


async def test_a_reload_applies_an_agents_changed_grants_and_skills(
    tmp_path: Path, reload_mcp_fleet: Fleet
) -> None:
    """The coder's grants narrowed and widened and a skill added: the reload changes its
    spec and nothing else."""
    file = tmp_path / "fleetwarden.yaml"
    started = parse_config(BEFORE, str(file), base_dir=tmp_path, source=file)
    assert (await reload_mcp_fleet.spec("coder")).mcp == (McpGrant("tracker"),)
    file.write_text(AFTER)
    diff = await reload_config(started, ENVIRON, Offered(), reload_mcp_fleet)
    assert diff.changed == ("coder",)
    coder = await reload_mcp_fleet.spec("coder")
    assert coder.mcp == (McpGrant("tracker", frozenset({"get_issue"})), McpGrant("docs"))
    assert coder.skills == (tmp_path / "skills" / "notes",)


async def test_a_changed_mcp_section_refuses_the_reload_whole(
    tmp_path: Path, reload_mcp_fleet: Fleet
) -> None:
    """A server added, one changed: each named, the fix a restart; the agents' grants in
    the same edit are not applied either."""
    file = tmp_path / "fleetwarden.yaml"
    started = parse_config(BEFORE, str(file), base_dir=tmp_path, source=file)
    edited = AFTER.replace("tools: [search_issues, get_issue]", "tools: [get_issue]")
    file.write_text(edited.replace("mcp:\n", "mcp:\n  wiki: {command: wiki-mcp}\n", 1))
    with pytest.raises(CommandError) as caught:
        await reload_config(started, ENVIRON, Offered(), reload_mcp_fleet)
    said = str(caught.value)
    assert said.startswith(NOT_RELOADED)
    assert "MCP server 'tracker' was changed" in said
    assert "MCP server 'wiki' was added (the MCP door's servers are made at start)" in said
    assert "restart Fleetwarden" in said
    assert (await reload_mcp_fleet.spec("coder")).mcp == (McpGrant("tracker"),)


async def test_a_reload_refuses_a_grant_the_load_refuses(
    tmp_path: Path, reload_mcp_fleet: Fleet
) -> None:
    """A grant naming no server and a tool off the allow-list: the reload says each at its
    line, as a start would, and changes nothing."""
    file = tmp_path / "fleetwarden.yaml"
    started = parse_config(BEFORE, str(file), base_dir=tmp_path, source=file)
    file.write_text(
        SERVERS + "agents:\n  - name: coder\n    mcp:\n      trackr: {}\n"
        "  - name: reviewer\n    mcp: {tracker: {tools: [create_issue]}}\n"
    )
    with pytest.raises(CommandError) as caught:
        await reload_config(started, ENVIRON, Offered(), reload_mcp_fleet)
    said = str(caught.value)
    assert f"{file}:11: agents[0].mcp.trackr: MCP server 'trackr' is not defined" in said
    assert f"{file}:13: agents[1].mcp.tracker.tools[0]: tool 'create_issue' is not on" in said
    assert (await reload_mcp_fleet.spec("coder")).mcp == (McpGrant("tracker"),)


async def test_a_reload_of_the_defaults_grants_reaches_an_ad_hoc_agent_launched_after(
    tmp_path: Path, reload_mcp_fleet: Fleet, ledger: Ledger
) -> None:
    """`defaults.mcp` added by a reload: an agent no roster names, spawned after it, is
    granted it (no copy of the defaults frozen at start)."""
    file = tmp_path / "fleetwarden.yaml"
    started = parse_config(BEFORE, str(file), base_dir=tmp_path, source=file)
    file.write_text(BEFORE + "defaults:\n  mcp: [docs]\n")
    await reload_config(started, ENVIRON, Offered(), reload_mcp_fleet)
    await reload_mcp_fleet.spawn(LaunchRequest("scratch", collect=False))
    try:
        record = await ledger.agents.get_agent(AgentName("scratch"))
        assert record is not None and record.spec.mcp == (McpGrant("docs"),)
    finally:
        await reload_mcp_fleet.stop_agent("scratch")
