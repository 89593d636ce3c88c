"""An agent's sessions with the MCP door end with its run: the app's fleet listener
(:func:`bot.app.phases.core.mcp.ending_sessions`) hears the run's end and the door closes
the agent's sessions, and no other agent's; a turn's end closes nothing."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.app.phases.core.mcp import ending_sessions
from fleet.events import EventKind, FleetEvent
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from fleet.model import AgentState
from fleet.names import AgentName
from tests.integration.mcp.rig import CREDENTIAL_ENV, HttpMcp, door_on_endpoint

PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "script", "version": "1"},
}


async def _open(http: aiohttp.ClientSession, url: str, token: str) -> str:
    message = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": PARAMS}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    async with http.post(url, json=message, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
        return answer.headers["Mcp-Session-Id"]


def _event(agent: str, kind: EventKind) -> FleetEvent:
    return FleetEvent(AgentName(agent), kind, AgentState.STOPPED, "", False, run_id=1)


async def test_a_runs_end_ends_its_agents_sessions_only(tmp_path: Path, http_mcp: HttpMcp) -> None:
    """Two agents each hold a session; a turn's end of one closes nothing, its run's end
    closes its session and leaves the other's open, and its old session is then refused."""
    server = McpServer(
        "tracker", HttpServer(http_mcp.url, headers_env={"Authorization": CREDENTIAL_ENV})
    )
    grants = {"coder": [McpGrant("tracker")], "tester": [McpGrant("tracker")]}
    async with (
        door_on_endpoint(tmp_path / "state", [server], grants) as door,
        aiohttp.ClientSession() as http,
    ):
        url, token = door.url("coder", "tracker"), door.token("coder")
        session = await _open(http, url, token)
        await _open(http, door.url("tester", "tracker"), door.token("tester"))
        listener = ending_sessions(door.door)
        await listener(_event("coder", EventKind.TURN_OVER))
        assert len(door.door.sessions("coder")) == 1
        await listener(_event("coder", EventKind.ENDED))
        assert door.door.sessions("coder") == []
        assert len(door.door.sessions("tester")) == 1
        listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Mcp-Session-Id": session,
        }
        async with http.post(url, json=listing, headers=headers) as answer:
            assert answer.status == 404, await answer.text()
