"""The MCP door's live roster (:class:`fleet.mcp.roster.LiveRoster`): grants read from the
agents' specs at each call, so a reload's change applies to the next session."""

from __future__ import annotations

from fleet.agents.current import CurrentRoster
from fleet.mcp.door.routes import McpRoster
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from fleet.mcp.roster import LiveRoster
from fleet.model import AgentSpec
from fleet.names import AgentName

DOCS = McpServer("docs", HttpServer("http://127.0.0.1:9/mcp"))
CODER = AgentName("coder")


def test_grants_follow_the_roster_as_it_is_replaced() -> None:
    """An agent granted ``docs`` reaches it; once the roster is replaced without the grant
    (a reload), it does not; a server the config lacks is never granted."""
    current = CurrentRoster(
        {CODER: AgentSpec(CODER, "claude", mcp=(McpGrant("docs"), McpGrant("gone")))}
    )

    def grants(agent: str) -> tuple[McpGrant, ...]:
        spec = current.get(AgentName(agent))
        return () if spec is None else spec.mcp

    roster: McpRoster = LiveRoster({"docs": DOCS}, grants)
    assert roster.grant("coder", "docs") == McpGrant("docs")
    assert roster.server("docs") == DOCS
    assert roster.grant("coder", "gone") is None
    assert roster.grant("nobody", "docs") is None
    current.replace({CODER: AgentSpec(CODER, "claude")})
    assert roster.grant("coder", "docs") is None
