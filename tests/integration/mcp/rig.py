"""What the MCP door's tests share: the door over given servers and grants on a real
heartbeat endpoint, the test server's record of what it received, and where npm's
``server-everything`` is installed."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from fleet.mcp.door.routes import McpDoor, McpRoster, StaticRoster
from fleet.mcp.door.rules.limits import MAX_IN_FLIGHT, DoorLimits
from fleet.mcp.hooks import Ask, Billing, McpAudit, McpHooks
from fleet.mcp.model import McpGrant, McpServer, mcp_path
from fleet.redaction.redactor import Redactor
from fleet.watchdog.heartbeat import HeartbeatServer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SERVERS_BIN = Path(
    os.environ.get("FLEETWARDEN_MCP_SERVERS_BIN")
    or REPO / ".cache" / "mcp-servers" / "node_modules" / ".bin"
)
CREDENTIAL = "mcp-held-credential-7Qz9vX2pL4"
"""The token the test server requires: Fleetwarden holds it, no agent ever sees it."""
CREDENTIAL_ENV = "TRACKER_TOKEN"


@dataclass(frozen=True, slots=True)
class HttpMcp:
    """The SDK's MCP server running on loopback: its URL, and where it records each
    ``Authorization`` it received."""

    url: str
    record: Path

    def authorizations(self) -> list[str]:
        return [seen["authorization"] for seen in self.requests()]

    def methods(self) -> list[str]:
        """The HTTP method of each request the server received, in order."""
        return [seen["method"] for seen in self.requests()]

    def handshaken(self) -> bool:
        """Whether the door's handshake with the server is all at the server: the SDK's
        ``initialize`` and ``notifications/initialized`` (two POSTs) and then its listening
        GET — sent by the door on its own time, after the agent was answered. Counts of
        what the server received are taken from here on."""
        methods = self.methods()
        return methods.count("POST") >= 2 and "GET" in methods

    def requests(self) -> list[dict[str, str]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]


def everything_bin() -> str:
    """npm's server-everything, installed by tests/mcp_servers.sh; fails (never skips) when
    it is not installed."""
    binary = SERVERS_BIN / "mcp-server-everything"
    if not binary.exists():
        pytest.fail(f"{binary} is not installed: run bash tests/mcp_servers.sh")
    return str(binary)


def filesystem_bin() -> str:
    """npm's server-filesystem, installed by tests/mcp_servers.sh; fails (never skips) when
    it is not installed."""
    binary = SERVERS_BIN / "mcp-server-filesystem"
    if not binary.exists():
        pytest.fail(f"{binary} is not installed: run bash tests/mcp_servers.sh")
    return str(binary)


def ts_sdk() -> Path:
    """The MCP TypeScript SDK's package, installed beside the servers; fails when absent."""
    package = SERVERS_BIN.parent / "@modelcontextprotocol" / "sdk"
    if not (package / "package.json").exists():
        pytest.fail(f"{package} is not installed: run bash tests/mcp_servers.sh")
    return package


@dataclass
class Door:
    """The door on the real heartbeat endpoint: its URL per agent and server, the agents'
    tokens, and the audit records it gave."""

    endpoint: HeartbeatServer
    door: McpDoor
    audits: list[McpAudit] = field(default_factory=list)

    def url(self, agent: str, server: str) -> str:
        return f"http://127.0.0.1:{self.endpoint.port}{mcp_path(agent, server)}"

    def token(self, agent: str) -> str:
        return self.endpoint.token_for(agent)


@contextlib.asynccontextmanager
async def door_on_endpoint(
    state: Path,
    servers: Sequence[McpServer],
    grants: Mapping[str, Sequence[McpGrant]],
    *,
    environ: Mapping[str, str] | None = None,
    asks: Sequence[Ask] = (),
    max_in_flight: int = MAX_IN_FLIGHT,
    roster: McpRoster | None = None,
    billing: Billing | None = None,
    redactor: Redactor | None = None,
    errlog: TextIO | None = None,
) -> AsyncIterator[Door]:
    """The door over ``servers`` as ``grants`` give them (or as ``roster`` has them, read
    at each request), mounted on a real heartbeat endpoint listening on 127.0.0.1 until the
    block ends (every session then ended); ``billing``: what holds a priced call; ``redactor``:
    the app's (what it knows taken out of what is relayed); ``errlog``: where stdio servers'
    standard error goes."""
    audits: list[McpAudit] = []

    async def audit(record: McpAudit) -> None:
        audits.append(record)

    credentials = {CREDENTIAL_ENV: f"Bearer {CREDENTIAL}"} if environ is None else environ
    door = McpDoor(
        roster or StaticRoster.of(servers, grants),
        environ=credentials,
        hooks=McpHooks(asks=tuple(asks), audits=(audit,), billing=billing),
        limits=DoorLimits(max_in_flight=max_in_flight),
        redactor=redactor,
        errlog=errlog,
    )

    async def on_beat(agent: str, kind: str) -> None:
        return None

    endpoint = HeartbeatServer(state, on_beat, doors=[door])
    await endpoint.start()
    try:
        yield Door(endpoint, door, audits)
    finally:
        await door.stop()
        await endpoint.stop()


@contextlib.asynccontextmanager
async def sdk_client(url: str, token: str) -> AsyncIterator[ClientSession]:
    """The SDK's MCP client on ``url`` with ``token`` as its bearer token, initialized."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: object) -> str:
    """The text of a tool's result, its text parts joined."""
    content = getattr(result, "content", [])
    return "".join(c.text for c in content if isinstance(c, TextContent))


def processes_in(directory: Path) -> set[int]:
    """The pids of the processes working in ``directory`` (a stdio server started there)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "cwd") == str(directory):
                found.add(int(entry.name))
    return found
