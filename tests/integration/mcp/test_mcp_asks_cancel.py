"""A call the agent gives up on while the door asks about it — its ``notifications/cancelled``,
or its HTTP connection closed with nothing said — ends the ask (the approval request
withdrawn, as a CLI's withdrawn ask is), the call is never relayed — a late yes can run
nothing — and it is audited as cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
import pytest

from fleet.approvals.service import AlreadyAnswered
from fleet.ledger.records.approvals import ApprovalState, Decision
from fleet.mcp.asking import CHANNEL
from fleet.mcp.hooks import Outcome
from tests.integration.mcp.cli_rig import asking
from tests.integration.mcp.rig import HttpMcp
from tests.integration.mcp.test_mcp_door_http import AGENT, Poster, the_door
from tests.polling import eventually

pytestmark = pytest.mark.integration


async def test_a_call_cancelled_while_asked_withdraws_its_ask_and_is_never_relayed(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """The call waits on its approval request; the agent cancels it: the request is
    withdrawn, the held POST ends with no answer, the server never sees the call, and the
    session goes on (a ping is answered)."""
    async with (
        asking(tmp_path) as asks,
        the_door(tmp_path, http_mcp, asks=[asks.ask]) as door,
        aiohttp.ClientSession() as http,
    ):
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        await post.initialize()
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "later"}},
        }

        async def held() -> tuple[int, str]:
            async with http.post(post.url, json=call, headers=post.headers) as answer:
                return answer.status, await answer.text()

        waiting = asyncio.create_task(held())
        [request] = await eventually(lambda: asks.approvals.pending(AGENT), "the call asked")
        assert (request.channel, request.tool) == (CHANNEL, "mcp__tracker__echo")
        await eventually(http_mcp.handshaken, "the door's handshake at the server")
        seen = len(http_mcp.requests())
        cancel = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": 7, "reason": "the user gave up"},
        }
        async with http.post(post.url, json=cancel, headers=post.headers) as answer:
            assert answer.status == 202
        status, body = await asyncio.wait_for(waiting, 30)
        assert status == 202 and body == ""  # no answer to a cancelled request
        ended = await asks.approvals.get(request.id)
        assert ended.state is ApprovalState.CLOSED and ended.how == "withdrawn"
        assert (await post.call("ping", {}))["result"] == {}
        posted = [m for m in http_mcp.methods()[seen:] if m == "POST"]
        assert posted == ["POST"]  # the ping alone: neither the call nor its cancellation
        audit = await eventually(lambda: door.audits, "the cancellation audited")
        assert [a.outcome for a in audit] == [Outcome.CANCELLED]


async def test_a_call_whose_agent_hangs_up_while_asked_withdraws_its_ask_and_is_never_relayed(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """The call waits on its approval request; the agent's HTTP client closes its connection
    without cancelling: the request is withdrawn, a yes after that is refused, the server never
    sees the call, the call is audited cancelled, and the session goes on."""
    async with (
        asking(tmp_path) as asks,
        the_door(tmp_path, http_mcp, asks=[asks.ask]) as door,
        aiohttp.ClientSession() as http,
        aiohttp.ClientSession() as hanging,  # a client of its own, its connection closed
    ):
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        await post.initialize()
        call = {
            "jsonrpc": "2.0",
            "id": 8,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "nobody waits"}},
        }

        async def held() -> None:
            async with hanging.post(post.url, json=call, headers=post.headers) as answer:
                await answer.read()

        waiting = asyncio.create_task(held())
        [request] = await eventually(lambda: asks.approvals.pending(AGENT), "the call asked")
        await eventually(http_mcp.handshaken, "the door's handshake at the server")
        seen = len(http_mcp.requests())
        waiting.cancel()  # the client gives up and hangs up: no cancellation is sent
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        await hanging.close()

        async def withdrawn() -> bool:
            ended = await asks.approvals.get(request.id)
            return ended.state is ApprovalState.CLOSED and ended.how == "withdrawn"

        await eventually(withdrawn, "the ask withdrawn once the agent hung up")
        with pytest.raises(AlreadyAnswered):
            await asks.approvals.answer(request.id, by="@ana", decision=Decision.ALLOW, how="reply")
        audit = await eventually(lambda: door.audits, "the hang-up audited")
        assert [(a.outcome, a.name) for a in audit] == [(Outcome.CANCELLED, "echo")]
        assert "hung up" in audit[0].why
        assert (await post.call("ping", {}))["result"] == {}
        posted = [m for m in http_mcp.methods()[seen:] if m == "POST"]
        assert posted == ["POST"]  # the ping alone: the call never reached the server


async def test_a_call_cancelled_as_its_yes_comes_in_is_never_relayed(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """The agent's cancel handled after the ask's yes is in but before the door relays the
    call (the yes cannot be withdrawn any more): the call is still never relayed, the held
    POST ends with no answer, and it is audited cancelled."""
    from fleet.mcp.hooks import McpCall, Verdict
    from fleet.mcp.wire import JSONRPCNotification

    cancel = JSONRPCNotification(
        jsonrpc="2.0", method="notifications/cancelled", params={"requestId": 7}
    )

    def cancel_now() -> None:  # the session's notify, run to its end at once
        [session] = door.door.sessions()
        with contextlib.suppress(StopIteration):
            session.notify(cancel).send(None)

    async def yes_then_cancel(call: McpCall) -> Verdict:
        asyncio.get_running_loop().call_soon(cancel_now)  # before the call is resumed
        return Verdict(True, "")

    async with (
        the_door(tmp_path, http_mcp, asks=[yes_then_cancel]) as door,
        aiohttp.ClientSession() as http,
    ):
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        await post.initialize()
        assert (await post.call("ping", {}))["result"] == {}  # all before is at the server
        await eventually(http_mcp.handshaken, "the door's handshake at the server")
        seen = len(http_mcp.requests())
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "never"}},
        }
        async with http.post(post.url, json=call, headers=post.headers) as answer:
            assert (answer.status, await answer.text()) == (202, "")
        audit = await eventually(lambda: door.audits, "the cancellation audited")
        assert [a.outcome for a in audit] == [Outcome.CANCELLED]
        assert http_mcp.requests()[seen:] == []  # the server never saw the call
