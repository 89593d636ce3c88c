"""The registry of the heartbeat endpoint's desks (:class:`bot.app.desks.Desks`): a door
reaches its desk once the phase making it opens it there, answers as without it before,
and a desk opened twice is a wiring error; the approval hold's drafts likewise."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.app.desks import Desks
from fleet.connections.token import TOKEN_HEADER
from fleet.ledger.records.peers import ReviewRecord
from fleet.watchdog.heartbeat import HeartbeatServer

AGENT = "coder-1"
APPROVED = ReviewRecord(
    1, 1, "coder", "reviewer", 1, 1, "app", "fw/coder/1", "a" * 40, 7, None, "approved",
    "", datetime(2026, 11, 27, tzinfo=UTC), None,
)  # fmt: skip
ASK = {"tool_name": "Write", "tool_input": {"file_path": "/w/a.txt", "content": "x"}}


async def no_beat(agent: str, kind: str) -> None:
    raise AssertionError("an ask is no beat")


async def ask(server: HeartbeatServer) -> bytes:
    url = server.url_for(AGENT).replace("/heartbeat/", "/ask/")
    headers = {TOKEN_HEADER: server.token_for(AGENT)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=io.BytesIO(json.dumps(ASK).encode()), headers=headers) as response,
    ):
        assert response.status == 200
        return await response.read()


async def test_a_hook_ask_reaches_the_desk_opened_after_the_endpoint_started(
    tmp_path: Path,
) -> None:
    """The endpoint, listening before the fleet, denies a hook's ask while no desk is open,
    and hands the next one to the live sessions' desk once the fleet phase opens it."""
    desks = Desks()
    server = HeartbeatServer(tmp_path / "state", no_beat, hook_asks=desks.hook_asks)
    await server.start()
    try:
        before = json.loads(await ask(server))["hookSpecificOutput"]
        assert before["decision"]["behavior"] == "deny"
        seen: list[str] = []

        async def on_ask(agent: str, body: bytes) -> bytes:
            seen.append(agent)
            return b'{"answer": 1}'

        desks.open_hook_asks(on_ask)
        assert await ask(server) == b'{"answer": 1}'
        assert seen == [AGENT]
    finally:
        await server.stop()


async def test_a_desk_opened_twice_is_a_wiring_error() -> None:
    """Each desk is opened once, by the one phase that makes it: a second is refused,
    naming the door, and the first stays."""

    async def first(agent: str, body: bytes) -> bytes:
        return b"first"

    async def second(agent: str, body: bytes) -> bytes:
        return b"second"

    desks = Desks()
    desks.open_hook_asks(first)
    with pytest.raises(RuntimeError, match="the ask door's hooks was opened twice"):
        desks.open_hook_asks(second)
    assert desks.hook_asks() is first


async def test_the_git_door_finds_no_line_before_the_repositories_open_theirs() -> None:
    """Before the repositories' phase opens their lines, the git door's desk knows no line
    repo (the door answers as for an unknown repository) and keeps no refusal."""
    desks = Desks()
    assert await desks.door_repo(AGENT, "app") is None
    await desks.refused(AGENT, "app", [{"why": "a secret"}])
    assert desks.peers() is None and desks.forge() is None and desks.verdicts() is None


async def test_the_approval_hold_reaches_forge_works_drafts_once_opened() -> None:
    """Before forge work opens its drafts, a held push's pull request is made a draft by
    nobody (the hold refuses the push); then forge work answers, and a second opening is a
    wiring error."""
    desks = Desks()
    assert await desks.draft_head(APPROVED, "b" * 40) is False
    asked: list[tuple[int | None, str]] = []

    async def drafter(approved: ReviewRecord, tip: str) -> bool:
        asked.append((approved.forge_run, tip))
        return True

    desks.open_drafts(drafter)
    assert await desks.draft_head(APPROVED, "b" * 40) is True
    assert asked == [(7, "b" * 40)]
    with pytest.raises(RuntimeError, match="the approval hold's drafts was opened twice"):
        desks.open_drafts(drafter)


async def test_the_mcp_door_reads_grants_from_the_roster_desk_as_it_is_now() -> None:
    """Before the fleet opens its roster no agent has an MCP grant; after, an agent's grants
    are its current spec's (a reload's replacement applies); a priced call is billed only
    once the billing desk is open."""
    from fleet.agents.current import CurrentRoster
    from fleet.mcp.billing import PolicyBilling
    from fleet.mcp.model import McpGrant
    from fleet.metering.policy import AllowAll
    from fleet.model import AgentSpec
    from fleet.names import AgentName
    from fleet.timing.clock import ManualClock

    desks = Desks()
    assert desks.mcp_grants(AGENT) == ()
    assert desks.mcp_billing() is None  # nothing to bill on yet
    name = AgentName(AGENT)
    roster = CurrentRoster({name: AgentSpec(name, "claude", mcp=(McpGrant("docs"),))})
    desks.open_mcp_roster(roster)
    assert desks.mcp_grants(AGENT) == (McpGrant("docs"),)
    assert desks.mcp_grants("Not A Name") == ()
    roster.replace({name: AgentSpec(name, "claude")})
    assert desks.mcp_grants(AGENT) == ()
    charged: list[tuple[str, int, float | None]] = []
    billing = PolicyBilling(
        AllowAll,
        ManualClock(datetime(2026, 1, 1, tzinfo=UTC)),
        lambda *spent: charged.append(spent),
    )
    desks.open_mcp_charge(billing)
    assert desks.mcp_billing() is billing
    billing.settle(billing.claim(AGENT, "docs", 0.5), 0.5)
    assert charged == [(AGENT, 0, 0.5)]
    with pytest.raises(RuntimeError, match="opened twice"):
        desks.open_mcp_roster(roster)


def test_an_agent_the_roster_does_not_name_has_the_defaults_grants_at_the_door() -> None:
    """An ad hoc agent is launched with the ``defaults``' grants as they are now
    (:meth:`McpRules.ad_hoc`): the door grants it the same, and a reload's new defaults
    apply to it too; a roster agent keeps its own."""
    from fleet.agents.current import CurrentRoster
    from fleet.mcp.config.rules import McpRules
    from fleet.mcp.model import McpGrant
    from fleet.model import AgentSpec
    from fleet.names import AgentName

    desks = Desks()
    name = AgentName(AGENT)
    roster = CurrentRoster({name: AgentSpec(name, "claude")}, McpRules(grants=(McpGrant("docs"),)))
    desks.open_mcp_roster(roster)
    assert desks.mcp_grants("scout") == (McpGrant("docs"),)
    assert desks.mcp_grants(AGENT) == ()
    roster.replace({name: AgentSpec(name, "claude")}, McpRules(grants=(McpGrant("wiki"),)))
    assert desks.mcp_grants("scout") == (McpGrant("wiki"),)


def test_an_agent_a_reload_takes_out_keeps_its_own_grants_never_the_defaults() -> None:
    """An agent a reload removes runs on as it was: the door grants it what its spec gave
    (none, for ``mcp: []``), never the defaults' servers; a reload that names it again
    gives it that spec's grants."""
    from fleet.agents.current import CurrentRoster
    from fleet.mcp.config.rules import McpRules
    from fleet.mcp.model import McpGrant
    from fleet.model import AgentSpec
    from fleet.names import AgentName

    desks = Desks()
    loner, other = AgentName("loner"), AgentName("other")
    defaults = McpRules(grants=(McpGrant("db"),))
    roster = CurrentRoster(
        {loner: AgentSpec(loner, "claude"), other: AgentSpec(other, "claude")}, defaults
    )
    desks.open_mcp_roster(roster)
    assert desks.mcp_grants("loner") == ()
    roster.replace({other: AgentSpec(other, "claude")}, defaults)
    assert desks.mcp_grants("loner") == ()  # not the defaults' db
    assert roster.left(loner) == AgentSpec(loner, "claude")
    roster.replace({loner: AgentSpec(loner, "claude", mcp=(McpGrant("wiki"),))}, defaults)
    assert desks.mcp_grants("loner") == (McpGrant("wiki"),)
    assert roster.left(loner) is None
    assert desks.mcp_grants("other") == ()  # taken out in its turn, as it was


async def test_a_removed_agents_own_grants_end_with_its_run() -> None:
    """An agent a reload took out keeps its own grants while that run goes on; once it
    ends, the agent is an ad hoc one (the defaults' grants, as its next launch is given)."""
    from fleet.agents.current import CurrentRoster
    from fleet.events import EventKind, FleetEvent
    from fleet.mcp.config.rules import McpRules
    from fleet.mcp.model import McpGrant
    from fleet.model import AgentSpec, AgentState
    from fleet.names import AgentName

    desks = Desks()
    coder = AgentName("coder")
    defaults = McpRules(grants=(McpGrant("docs"),))
    roster = CurrentRoster(
        {coder: AgentSpec(coder, "claude", mcp=(McpGrant("prod-db"),))}, defaults
    )
    desks.open_mcp_roster(roster)
    roster.replace({}, defaults)
    assert desks.mcp_grants("coder") == (McpGrant("prod-db"),)
    ended = FleetEvent(coder, EventKind.ENDED, AgentState.STOPPED, "stopped", True)
    await roster.on_fleet_event(ended)
    assert roster.left(coder) is None
    assert desks.mcp_grants("coder") == (McpGrant("docs"),)
