"""The MCP door in front of a real stdio server, npm's ``server-everything``, run by
Fleetwarden on its own side: its environment only the safe few and its held variables,
a process of its own per session ended with the session, its tools filtered, its progress
relayed, a call cancelled by the agent or timed out passed on as a cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import pytest
from mcp.shared.exceptions import MCPError

from fleet.mcp.hooks import Outcome
from fleet.mcp.model import McpGrant, McpServer, StdioServer
from tests.integration.mcp.rig import (
    CREDENTIAL,
    CREDENTIAL_ENV,
    HERE,
    Door,
    door_on_endpoint,
    everything_bin,
    processes_in,
    sdk_client,
    text_of,
    ts_sdk,
)
from tests.polling import eventually

pytestmark = pytest.mark.integration

AGENT = "coder"
TOOLS = frozenset({"echo", "get-sum", "get-env", "trigger-long-running-operation"})


@contextlib.asynccontextmanager
async def the_door(tmp_path: Path, seconds: float = 30.0) -> AsyncIterator[tuple[Door, Path]]:
    """The door with ``every`` (server-everything, working in its own directory, its
    ``EVERY_TOKEN`` the held credential) granted to :data:`AGENT`; and that directory."""
    where = tmp_path / "every"
    where.mkdir()
    server = McpServer(
        "every",
        StdioServer(
            everything_bin(),
            env={"EVERY_MODE": "test"},
            env_env={"EVERY_TOKEN": CREDENTIAL_ENV},
            cwd=str(where),
        ),
        tools=TOOLS,
        timeout=seconds,
    )
    environ = {CREDENTIAL_ENV: CREDENTIAL, "FLEETWARDEN_OWN_SECRET": "not-for-servers-5f3a"}
    grants = {AGENT: [McpGrant("every")]}
    async with door_on_endpoint(tmp_path, [server], grants, environ=environ) as door:
        yield door, where


async def test_a_stdio_server_runs_with_its_held_environment_only(tmp_path: Path) -> None:
    """server-everything lists the allowed tools only, echoes, and sees its held variable
    and plain env but none of Fleetwarden's others; the agent sees the variable redacted."""
    async with (
        the_door(tmp_path) as (door, _),
        sdk_client(door.url(AGENT, "every"), door.token(AGENT)) as session,
    ):
        listed = await session.list_tools()
        echoed = await session.call_tool("echo", {"message": "hi"})
        env = text_of(await session.call_tool("get-env", {}))
    assert {tool.name for tool in listed.tools} == TOOLS
    assert text_of(echoed) == "Echo: hi"
    assert CREDENTIAL not in env
    assert f"[redacted: MCP credential {CREDENTIAL_ENV}]" in env
    assert '"EVERY_MODE": "test"' in env
    assert "FLEETWARDEN_OWN_SECRET" not in env and "PYTEST_CURRENT_TEST" not in env


async def test_each_session_has_its_own_process_ended_with_it(tmp_path: Path) -> None:
    """Two sessions run two processes; ending one (DELETE) ends its process only, and the
    door's stop ends the other."""
    async with the_door(tmp_path) as (door, where), aiohttp.ClientSession() as http:
        first = await initialize(http, door)
        one = await eventually(lambda: processes_in(where), "the first server running")
        await initialize(http, door)
        both = await eventually(lambda: processes_in(where) - one, "the second server running")
        async with http.delete(door.url(AGENT, "every"), headers=first) as ended:
            assert ended.status == 204
        await eventually(lambda: not processes_in(where) & one, "the first server ended")
        assert processes_in(where) >= both
        await door.door.stop()
        await eventually(lambda: not processes_in(where), "every server ended")


async def test_progress_and_cancellation_are_relayed(tmp_path: Path) -> None:
    """The server's progress reaches the agent; a call the agent gives up on is cancelled
    at the server and audited cancelled; the session goes on."""
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with (
        the_door(tmp_path) as (door, _),
        sdk_client(door.url(AGENT, "every"), door.token(AGENT)) as session,
    ):
        long = "trigger-long-running-operation"
        await session.call_tool(long, {"duration": 1, "steps": 2}, progress_callback=on_progress)
        with anyio.move_on_after(1.0):
            await session.call_tool(long, {"duration": 60, "steps": 2})
        after = await session.call_tool("get-sum", {"a": 1, "b": 2})
        outcomes = await eventually(
            lambda: len(door.audits) == 3 and [a.outcome for a in door.audits], "three audited"
        )
    assert progress == [1, 2]
    assert outcomes == [Outcome.OK, Outcome.CANCELLED, Outcome.OK]
    assert "3" in text_of(after)


async def test_a_slow_stdio_call_times_out(tmp_path: Path) -> None:
    """A call past the server's timeout is an error for the agent and the session goes on."""
    async with (
        the_door(tmp_path, seconds=1.0) as (door, _),
        sdk_client(door.url(AGENT, "every"), door.token(AGENT)) as session,
    ):
        with pytest.raises(MCPError) as timed_out:
            await session.call_tool("trigger-long-running-operation", {"duration": 60, "steps": 2})
        after = await session.call_tool("echo", {"message": "on"})
    assert "did not answer tools/call within 1 s" in timed_out.value.message
    assert text_of(after) == "Echo: on"


async def test_a_server_that_cannot_start_is_said_plainly(tmp_path: Path) -> None:
    """A stdio server whose command is missing answers initialize 502, naming the server
    and nothing of its command."""
    server = McpServer("broken", StdioServer(str(tmp_path / "no-such-server")))
    grants = {AGENT: [McpGrant("broken")]}
    async with (
        door_on_endpoint(tmp_path, [server], grants, environ={}) as door,
        aiohttp.ClientSession() as http,
    ):
        message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
        headers = {"Authorization": f"Bearer {door.token(AGENT)}"}
        async with http.post(door.url(AGENT, "broken"), json=message, headers=headers) as answer:
            assert answer.status == 502
            said = json.loads(await answer.text())["error"]["message"]
    assert said == "the MCP server broken could not be reached"
    assert door.door.sessions() == []


async def test_the_typescript_sdk_client_works_through_the_door(tmp_path: Path) -> None:
    """The TypeScript SDK's client (the CLIs' own) lists the allowed tools, calls one, gets
    progress on another, is refused one off the list, and ends its session, which ends its
    server's process."""
    async with the_door(tmp_path) as (door, where):
        argv = ["node", str(HERE / "ts_client.mjs"), str(ts_sdk()), door.url(AGENT, "every")]
        env = {**os.environ, "MCP_DOOR_TOKEN": door.token(AGENT)}
        client = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=tmp_path, stdout=PIPE, stderr=PIPE
        )
        out, err = await asyncio.wait_for(client.communicate(), 60)
        assert client.returncode == 0, err.decode()
        seen = json.loads(out.decode().strip().splitlines()[-1])
        await eventually(lambda: not processes_in(where), "its server ended with the session")
    assert seen["tools"] == sorted(TOOLS)
    assert seen["sum"] == [{"type": "text", "text": "The sum of 2 and 5 is 7."}]
    assert seen["progress"] == [1, 2]
    assert "gzip-file-as-resource" in seen["refused"] and "not allowed" in seen["refused"]


async def test_a_server_that_never_answers_is_timed_out_and_ended(tmp_path: Path) -> None:
    """A stdio server that reads nothing and says nothing fails initialize after its
    timeout (502), and its process is ended with the session it would have been."""
    where = tmp_path / "mute"
    where.mkdir()
    big = "y" * (512 * 1024)  # more than a pipe holds: the door's write to it waits
    server = McpServer("mute", StdioServer("sleep", ("3600",), cwd=str(where)), timeout=1.0)
    async with (
        door_on_endpoint(tmp_path, [server], {AGENT: [McpGrant("mute")]}, environ={}) as door,
        aiohttp.ClientSession() as http,
    ):
        params = {"protocolVersion": "2025-06-18", "capabilities": {}, "padding": big}
        message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
        headers = {"Authorization": f"Bearer {door.token(AGENT)}"}
        async with http.post(door.url(AGENT, "mute"), json=message, headers=headers) as answer:
            assert answer.status == 502
            said = json.loads(await answer.text())["error"]["message"]
        assert door.door.sessions() == []
        await eventually(lambda: not processes_in(where), "the mute server ended", within=15)
    assert said in (  # the deadline of the call, or of the write that never ended
        "the MCP server mute did not answer initialize within 1 s",
        "the MCP server mute took nothing",
    )


async def initialize(http: aiohttp.ClientSession, door: Door) -> dict[str, str]:
    """Open a session by plain HTTP; the headers that carry on in it."""
    headers = {"Authorization": f"Bearer {door.token(AGENT)}", "Accept": "application/json"}
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    message = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    async with http.post(door.url(AGENT, "every"), json=message, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
        return {**headers, "Mcp-Session-Id": answer.headers["Mcp-Session-Id"]}
