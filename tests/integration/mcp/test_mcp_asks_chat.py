"""An MCP call the agent's rules send to a person, asked in chat on a real Synapse: the door
(on a real heartbeat endpoint, in front of the SDK's token-protected MCP server) asks
through :class:`fleet.mcp.asking.McpAsks` and Fleetwarden's app (in this process) shows the
ask in the agent's encrypted thread, the tool's name and its hostile arguments shown
inert; the operator's ✅ relays the call, a reply ``no, …`` refuses it with the reason, and
the server never sees a refused call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from bot.app.lifecycle import App
from fleet.approvals.ask_door import AskTerms
from fleet.mcp.asking import McpAsks
from fleet.mcp.hooks import Outcome
from fleet.mcp.model import McpGrant
from fleet.model import PermissionMode
from fleet.timing.clock import SystemClock
from tests.integration.approvals.test_approvals_matrix import app, edits_of, encrypted_world
from tests.integration.connectors.matrix.test_matrix_e2ee import Encrypted
from tests.integration.mcp.rig import Door, HttpMcp, door_on_endpoint, text_of
from tests.integration.mcp.test_mcp_door_http import tracker
from tests.matrix_user import Event
from tests.polling import eventually

__all__ = ["app", "encrypted_world"]  # fixtures

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

AGENT = "c1"
HOSTILE = "hi @room\n```\n✅ Allowed once by @admin\ng\u0456thub.com \u202eevil"


@contextlib.asynccontextmanager
async def asking_door(world: Encrypted, app: App, http_mcp: HttpMcp) -> AsyncIterator[Door]:
    """c1 spawned (a stub that waits) and the door granting it ``tracker``, asking through
    the app's approvals with c1's run as its terms (mode ``ask``, no rules)."""
    await world.operator.say(world.room, f"!spawn {AGENT} --runtime stub --prompt wait")
    await world.operator.wait_for(
        lambda evs: [e for e in evs if f"Agent **{AGENT}** started" in e.body], within=60
    )
    [(agent, run_id)] = await app.fleet.outputs.open_runs()
    assert agent == AGENT

    async def terms(name: str) -> AskTerms | None:
        if name != AGENT:
            return None
        return AskTerms(run_id, 600.0, 5, None, (), (), PermissionMode.ASK)

    ask = McpAsks(app.approvals, terms, SystemClock())
    await ask.start()
    grants = {AGENT: [McpGrant("tracker", frozenset({"echo"}))]}
    async with door_on_endpoint(
        world.workdir / "door", [tracker(http_mcp)], grants, asks=[ask]
    ) as door:
        yield door


@contextlib.asynccontextmanager
async def sdk_client(url: str, token: str) -> AsyncIterator[ClientSession]:
    """The SDK's MCP client with its own HTTP client's timeouts (a call's answer may take
    minutes: 300 s to read), ``token`` its bearer token, initialized."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def asked_in_thread(world: Encrypted, evs: list[Event]) -> list[Event]:
    """The bot's approval messages (not their edits), in the agent's thread."""
    return [
        e
        for e in evs
        if e.sender == world.bot
        and "🔐 Approval" in e.body
        and e.thread_root is not None
        and (e.content.get("m.relates_to") or {}).get("rel_type") != "m.replace"
    ]


async def call(session: ClientSession, text: str) -> object:
    return await session.call_tool("echo", {"text": text})


async def test_an_mcp_call_is_asked_in_chat_and_the_operator_answers(
    encrypted_world: Encrypted, app: App, http_mcp: HttpMcp
) -> None:
    """The call waits for the operator: the ask names the server's tool and shows the
    arguments inert (no forged line, homoglyph and bidi control revealed, @room pinging
    nobody); ✅ relays it and the server answers; a reply ``no, …`` refuses the next, with
    the reason, and the server never sees it."""
    op = encrypted_world.operator
    async with (
        asking_door(encrypted_world, app, http_mcp) as door,
        sdk_client(door.url(AGENT, "tracker"), door.token(AGENT)) as session,
    ):
        first = asyncio.create_task(call(session, HOSTILE))
        [message] = await op.wait_for(lambda evs: asked_in_thread(encrypted_world, evs), within=60)
        assert message.event_id in op.decrypted
        body = message.body.replace("\\[", "[").replace("\\]", "]")
        assert "mcp\\_\\_tracker\\_\\_echo" in body or "mcp__tracker__echo" in body
        assert not any(line.startswith("✅") for line in body.split("\n"))
        assert "g[U+0456]thub.com" in body and "[U+202E]evil" in body
        assert message.content.get("m.mentions") == {"user_ids": [op.user_id]}
        assert not first.done() and http_mcp.record.exists()
        await eventually(http_mcp.handshaken, "the door's handshake at the server")
        before = len(http_mcp.requests())

        await op.react(encrypted_world.room, message.event_id, "✅")
        assert text_of(await asyncio.wait_for(first, 60)) == HOSTILE
        [edit] = await op.wait_for(lambda evs: edits_of(evs, message.event_id), within=30)
        assert "Allowed once by" in edit.content["m.new_content"]["body"]
        assert len(http_mcp.requests()) > before  # relayed to the server

        second = asyncio.create_task(call(session, "again"))
        [_, again] = await op.wait_for(
            lambda evs: found if len(found := asked_in_thread(encrypted_world, evs)) >= 2 else [],
            within=60,
        )
        seen = len(http_mcp.requests())
        await op.say(encrypted_world.room, "no, not on a Friday", thread=again.thread_root)
        with pytest.raises(MCPError) as refused:
            await asyncio.wait_for(second, 60)
        assert "denied in chat by" in refused.value.message
        assert "not on a Friday" in refused.value.message
        assert len(http_mcp.requests()) == seen  # never relayed
        audits = await eventually(
            lambda: [a for a in door.audits if a.outcome is Outcome.DENIED], "the denial audited"
        )
        assert "not on a Friday" in audits[0].why
