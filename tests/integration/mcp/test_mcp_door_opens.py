"""An agent that opens session after session with one stdio server (each ``initialize``
may start a process) is refused past the door's limit of opens a minute, with a JSON-RPC
error naming the limit: no process is started and no session ended for a refused one, and
another agent opens its own."""

from __future__ import annotations

import sys
from pathlib import Path

import aiohttp
import pytest

from fleet.mcp.door.rules.limits import MAX_SESSIONS, OPENS
from fleet.mcp.model import McpGrant, McpServer, StdioServer
from tests.integration.mcp.rig import HERE, door_on_endpoint, processes_in
from tests.polling import eventually

pytestmark = pytest.mark.integration

AGENT = "coder"
OTHER = "reviewer"


def initialize(rid: int) -> dict[str, object]:
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "script", "version": "1"},
    }
    return {"jsonrpc": "2.0", "id": rid, "method": "initialize", "params": params}


async def test_initialize_past_the_limit_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    """OPENS sessions a minute open (the oldest ended past MAX_SESSIONS); one more is a 429
    naming the limit, with no new process and the open sessions kept; another agent's
    own count lets it open."""
    where = tmp_path / "server"
    where.mkdir()
    script = str(HERE / "hostile_stdio_server.py")
    server = McpServer("hostile", StdioServer(sys.executable, args=(script,), cwd=str(where)))
    grants = {AGENT: [McpGrant("hostile")], OTHER: [McpGrant("hostile")]}
    async with (
        door_on_endpoint(tmp_path, [server], grants) as door,
        aiohttp.ClientSession() as http,
    ):

        async def post(agent: str, rid: int) -> tuple[int, dict[str, object]]:
            headers = {"Authorization": f"Bearer {door.token(agent)}"}
            url = door.url(agent, "hostile")
            async with http.post(url, json=initialize(rid), headers=headers) as answer:
                return answer.status, await answer.json()

        for rid in range(OPENS):
            status, _ = await post(AGENT, rid)
            assert status == 200
        live = {session.id for session in door.door.sessions(AGENT)}
        assert len(live) == MAX_SESSIONS
        running = await eventually(
            lambda: len(processes_in(where)) == MAX_SESSIONS and processes_in(where),
            "only the open sessions' servers running",
        )
        status, refused = await post(AGENT, 99)
        assert status == 429
        error = refused["error"]
        assert refused["id"] == 99 and isinstance(error, dict)
        assert f"over {OPENS} MCP sessions opened with hostile in 60 s" in error["message"]
        assert {session.id for session in door.door.sessions(AGENT)} == live
        assert processes_in(where) == running
        status, _ = await post(OTHER, 1)
        assert status == 200
