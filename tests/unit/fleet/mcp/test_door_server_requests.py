"""The server's requests of the client are answered by the door itself, never kept for the
agent: an agent's answer to one is not taken (the route refuses it), and the server gets the
door's answer."""

from __future__ import annotations

import asyncio

from fleet.mcp.door.rules.limits import SessionGrounds
from fleet.mcp.door.session import Session
from fleet.mcp.hooks import McpHooks
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from fleet.mcp.upstream.credentials import Scrub
from fleet.mcp.wire import JSONRPCError, JSONRPCMessage, JSONRPCRequest

SERVER = McpServer("tracker", HttpServer("http://127.0.0.1:9/mcp"))


class _Written:
    """The server's side of the session's connection: what the door sent it."""

    def __init__(self) -> None:
        self.sent: list[JSONRPCMessage] = []

    async def send(self, message: object) -> None:
        self.sent.append(message.message)  # type: ignore[attr-defined]


async def test_the_servers_requests_are_answered_by_the_door_not_held() -> None:
    """A server asking roots/list and sampling on and on holds nothing for the agent: each is
    answered by the door (no roots named: refused), none is held for the agent's stream."""
    session = Session(
        "s1",
        "coder",
        SERVER,
        lambda: McpGrant("tracker"),
        SessionGrounds({}, McpHooks()),
        scrub=Scrub(()),
        redact=str,
    )
    written = _Written()
    session._write = written
    for n in range(100):
        method = "roots/list" if n % 2 else "sampling/createMessage"
        session._from_server.take(JSONRPCRequest(jsonrpc="2.0", id=n, method=method, params={}))
    for _ in range(200):
        if len(written.sent) == 100:
            break
        await asyncio.sleep(0)
    assert len(written.sent) == 100
    assert all(isinstance(m, JSONRPCError) and m.error.code == -32601 for m in written.sent)
    assert not session._from_server._held._messages
    session._write = None
    await session.close()
