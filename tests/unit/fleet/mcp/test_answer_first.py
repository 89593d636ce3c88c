"""An answer that comes first, sent whole to a client taking JSON, is on its way before its
call's audit is made: the request's handler waiting on it resumes before the audit's task
makes the record (the dump of the arguments and result, and their redaction, up to a
megabyte); the audit is still made, redacted, and the session's close waits for it."""

from __future__ import annotations

import asyncio

from fleet.mcp.door.rules.limits import SessionGrounds
from fleet.mcp.door.session import Session
from fleet.mcp.door.wire.exchange import Exchange
from fleet.mcp.hooks import McpAudit, McpHooks, Outcome
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from fleet.mcp.upstream.credentials import Scrub
from fleet.mcp.wire import JSONRPCRequest, JSONRPCResponse

SERVER = McpServer("tracker", HttpServer("http://127.0.0.1:9/mcp"))


async def test_the_handler_has_the_answer_before_the_audit_is_made() -> None:
    order: list[str] = []
    audits: list[McpAudit] = []

    def redact(text: str) -> str:
        order.append("audit made")
        return text.replace("s3cret", "[redacted]")

    async def told(record: McpAudit) -> None:
        audits.append(record)

    session = Session(
        "s1",
        "coder",
        SERVER,
        lambda: McpGrant("tracker"),
        SessionGrounds({}, McpHooks(audits=(told,))),
        scrub=Scrub(()),
        redact=redact,
    )
    call = {"name": "echo", "arguments": {"text": "s3cret"}}
    request = JSONRPCRequest(jsonrpc="2.0", id=1, method="tools/call", params=call)
    exchange = Exchange(request, 0.0, 10, True)
    session._flight.sent(exchange, None)  # relayed, as request() leaves it

    async def handler() -> None:
        answer = await exchange.first(60.0)
        order.append("handler has the answer" if answer is not None else "handler has none")

    waiting = asyncio.create_task(handler())
    await asyncio.sleep(0)  # the handler waits on the answer, as a request's does
    result = {"content": [{"type": "text", "text": "s3cret"}], "isError": False}
    session._from_server.take(JSONRPCResponse(jsonrpc="2.0", id=1, result=result))
    await waiting
    await session.close()  # waits for the audit
    assert order[0] == "handler has the answer"
    assert "audit made" in order
    [audit] = audits
    assert audit.outcome is Outcome.OK and audit.name == "echo"
    assert "s3cret" not in audit.arguments + audit.result
    assert "[redacted]" in audit.arguments and "[redacted]" in audit.result
