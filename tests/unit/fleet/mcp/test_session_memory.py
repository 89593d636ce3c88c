"""What one MCP session keeps of the server's requests for the agent to answer is bounded:
past :data:`fleet.mcp.door.session.MAX_ASKED` unanswered, the oldest is forgotten and its late
answer refused; the newest are still answered."""

from __future__ import annotations

from fleet.mcp.door.session import MAX_ASKED, Session
from fleet.mcp.hooks import McpHooks
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from fleet.mcp.upstream.credentials import Scrub
from fleet.mcp.wire import JSONRPCRequest, JSONRPCResponse

SERVER = McpServer("tracker", HttpServer("http://127.0.0.1:9/mcp"))


async def test_the_servers_requests_kept_for_an_answer_are_bounded() -> None:
    """A server asking on and on, never answered, leaves at most MAX_ASKED requests kept:
    the oldest answer is refused, the newest taken."""
    session = Session(
        "s1",
        "coder",
        SERVER,
        lambda: McpGrant("tracker"),
        environ={},
        hooks=McpHooks(),
        scrub=Scrub(()),
        redact=str,
    )
    for n in range(MAX_ASKED + 10):
        ask = JSONRPCRequest(jsonrpc="2.0", id=n, method="roots/list", params={})
        session._from_server(ask)  # the server asks, as its stream gives it
    answer = JSONRPCResponse(jsonrpc="2.0", id=0, result={"roots": []})
    assert await session.answer(answer) is False
    newest = JSONRPCResponse(jsonrpc="2.0", id=MAX_ASKED + 9, result={"roots": []})
    assert await session.answer(newest) is True
    await session.close()
