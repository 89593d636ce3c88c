"""The heartbeat endpoint's ``/ask/<agent>``: where a CLI's permission hook asks, with the
agent's token, and waits for the answer in the reply."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fleet.connections.token import TOKEN_HEADER
from fleet.ledger import Ledger
from fleet.sessions.hook_asks import HookAsks
from fleet.timing.clock import SystemClock
from fleet.watchdog.heartbeat import MAX_ASK, HeartbeatServer

AGENT = "coder-1"
ASK = {"tool_name": "Write", "tool_input": {"file_path": "/w/a.txt", "content": "x" * 100_000}}


async def no_beat(agent: str, kind: str) -> None:
    raise AssertionError("an ask is no beat")


@pytest.fixture
async def heartbeat_asks_server(tmp_path: Path) -> AsyncIterator[HeartbeatServer]:
    started = HeartbeatServer(tmp_path / "state", no_beat)
    await started.start()
    yield started
    await started.stop()


def ask_url(server: HeartbeatServer) -> str:
    return server.url_for(AGENT).replace("/heartbeat/", "/ask/")


async def post(server: HeartbeatServer, body: bytes, token: str | None = None) -> tuple[int, bytes]:
    headers = {TOKEN_HEADER: token or server.token_for(AGENT)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(ask_url(server), data=io.BytesIO(body), headers=headers) as response,
    ):
        return response.status, await response.read()


async def test_an_ask_is_answered_by_the_callback(heartbeat_asks_server: HeartbeatServer) -> None:
    """The hook's JSON (a large Write included) reaches ``on_ask``; its answer is the reply."""
    seen: list[tuple[str, bytes]] = []

    async def on_ask(agent: str, body: bytes) -> bytes:
        seen.append((agent, body))
        return b'{"answer": 1}'

    heartbeat_asks_server.take_asks(on_ask)
    status, reply = await post(heartbeat_asks_server, json.dumps(ASK).encode())
    assert (status, reply) == (200, b'{"answer": 1}')
    assert seen == [(AGENT, json.dumps(ASK).encode())]


async def test_without_a_callback_every_ask_is_denied(
    heartbeat_asks_server: HeartbeatServer,
) -> None:
    """No approvals here: the hook is told no at once, in its own terms."""
    status, reply = await post(heartbeat_asks_server, json.dumps(ASK).encode())
    decision = json.loads(reply)["hookSpecificOutput"]
    assert status == 200 and decision["hookEventName"] == "PermissionRequest"
    assert decision["decision"]["behavior"] == "deny"


async def test_bad_asks_are_refused(heartbeat_asks_server: HeartbeatServer, tmp_path: Path) -> None:
    """A wrong token is 403, a body that is not a hook's JSON 400, one over 1 MiB 413."""
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    try:
        heartbeat_asks_server.take_asks(
            HookAsks(ledger.agents, ledger.heartbeats, ledger.runs, None).ask
        )
        heartbeat_asks_server.token_for(AGENT)
        assert (await post(heartbeat_asks_server, b"{}", token="x" * 32))[0] == 403
        assert (await post(heartbeat_asks_server, b"not json"))[0] == 400
        assert (await post(heartbeat_asks_server, b'{"no": "tool"}'))[0] == 400
        assert (await post(heartbeat_asks_server, b" " * (MAX_ASK + 1)))[0] == 413
        status, reply = await post(
            heartbeat_asks_server, json.dumps(ASK).encode()
        )  # no such agent here
        assert status == 200 and b'"deny"' in reply
    finally:
        await ledger.close()
