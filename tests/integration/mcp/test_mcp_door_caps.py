"""The door in front of hostile MCP servers that send more than a message's cap (a stdio
server writing a line that never ends, an HTTP server answering a 128 MiB JSON body, event
or gzip bomb): Fleetwarden's memory grows by no more than a few megabytes, the call is
answered an error and audited ``too_large``, the door serves the next call, and a stdio
server past the cap is ended, its process gone."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from fleet.mcp.hooks import Outcome
from fleet.mcp.model import HttpServer, McpGrant, McpServer, StdioServer
from fleet.mcp.wire import MAX_MESSAGE
from tests.integration.mcp.conftest import stop_server
from tests.integration.mcp.rig import HERE, REPO, Door, door_on_endpoint, processes_in
from tests.polling import eventually

pytestmark = pytest.mark.integration

AGENT = "coder"
FLOOD_MIB = 128
"""What each hostile server sends past the cap: far more than the door may hold."""
GROWTH = 40 * 1024 * 1024
"""Bytes Fleetwarden's memory may grow by while a flood is read: a few messages' caps."""
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """This process's resident memory now, in bytes (the door runs in it)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class Peak:
    """The most this process's memory grew above what it held when the watch began."""

    def __init__(self) -> None:
        self.base = rss()
        self.most = self.base

    @property
    def growth(self) -> int:
        return self.most - self.base

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Peak]:
        """Sample the memory while the block runs (the loop runs it between samples)."""
        done = asyncio.Event()

        async def sample() -> None:
            while not done.is_set():
                self.most = max(self.most, rss())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.002)

        sampler = asyncio.create_task(sample())
        try:
            yield self
        finally:
            done.set()
            await sampler
            self.most = max(self.most, rss())


class Agent:
    """An agent's side of one session by plain HTTP, as a script posts it."""

    def __init__(self, http: aiohttp.ClientSession, door: Door, server: str) -> None:
        self.http, self.url = http, door.url(AGENT, server)
        self.headers = {
            "Authorization": f"Bearer {door.token(AGENT)}",
            "Accept": "application/json",
        }

    async def initialize(self) -> Agent:
        params = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "script", "version": "1"},
        }
        message = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
        async with self.http.post(self.url, json=message, headers=self.headers) as answer:
            assert answer.status == 200, await answer.text()
            self.headers["Mcp-Session-Id"] = answer.headers["Mcp-Session-Id"]
        return self

    async def call(self, rid: int, tool: str, **arguments: object) -> tuple[int, dict[str, object]]:
        """The HTTP status and the JSON-RPC answer of a call of ``tool``."""
        params = {"name": tool, "arguments": arguments}
        message = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}
        async with self.http.post(self.url, json=message, headers=self.headers) as answer:
            return answer.status, json.loads(await answer.text())

    async def echo(self, rid: int) -> str:
        status, answer = await self.call(rid, "echo", text="still here")
        assert status == 200, answer
        result = answer["result"]
        assert isinstance(result, dict), answer
        text: str = result["content"][0]["text"]
        return text


def cut_said(answer: dict[str, object]) -> str:
    """The words of an error answer (it must be one)."""
    error = answer.get("error")
    assert isinstance(error, dict) and "result" not in answer, str(answer)[:300]
    words: str = error["message"]
    return words


@contextlib.asynccontextmanager
async def stdio_door(tmp_path: Path) -> AsyncIterator[tuple[Door, Path]]:
    """The door with the hostile stdio server granted to :data:`AGENT`; where it works."""
    where = tmp_path / "hostile"
    where.mkdir()
    script = str(HERE / "hostile_stdio_server.py")
    server = McpServer(
        "hostile", StdioServer(sys.executable, args=(script,), cwd=str(where)), timeout=15.0
    )
    async with door_on_endpoint(tmp_path, [server], {AGENT: [McpGrant("hostile")]}) as door:
        yield door, where


@pytest.fixture
def hostile_http() -> Iterator[str]:
    """The hostile HTTP server (:mod:`tests.integration.mcp.hostile_http_server`)
    listening: its URL; stopped after the test."""
    argv = [sys.executable, "-m", "tests.integration.mcp.hostile_http_server"]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30.0)
        assert ready, "the hostile server did not listen within 30 s"
        yield f"http://127.0.0.1:{int(process.stdout.readline())}/mcp"
    finally:
        stop_server(process)


@pytest.mark.parametrize("tool", ["flood", "flood_tail"])
async def test_a_stdio_line_past_the_cap_is_cut_and_its_server_ended(
    tmp_path: Path, tool: str
) -> None:
    """A stdio server writing a line that never ends (its id first, or last where nothing
    names it until the end) costs Fleetwarden a few megabytes: the call is answered an
    error, audited too_large, the server's process is ended, and another session and a new
    one are served."""
    async with stdio_door(tmp_path) as (door, where), aiohttp.ClientSession() as http:
        other = await Agent(http, door, "hostile").initialize()
        flooded = await Agent(http, door, "hostile").initialize()
        both = await eventually(lambda: len(processes_in(where)) == 2 and processes_in(where), "2")
        async with Peak().watching() as peak:
            status, answer = await flooded.call(7, tool, mib=FLOOD_MIB)
        assert status == 200 and f"over {MAX_MESSAGE} bytes" in cut_said(answer)
        assert peak.growth < GROWTH, f"grew {peak.growth / 2**20:.0f} MiB"
        audit = await eventually(lambda: door.audits, "the call audited")
        assert [(a.name, a.outcome) for a in audit] == [(tool, Outcome.TOO_LARGE)]
        assert "over" in audit[0].why and audit[0].bytes_out < 4096
        left = await eventually(lambda: len(processes_in(where)) == 1 and processes_in(where), "1")
        assert left < both
        assert await other.echo(8) == "still here"
        again = await Agent(http, door, "hostile").initialize()
        assert await again.echo(9) == "still here"
        await door.door.stop()
        await eventually(lambda: not processes_in(where), "every server ended")


@pytest.mark.parametrize("tool", ["flood_json", "flood_sse", "flood_lines"])
async def test_an_http_answer_past_the_cap_is_cut_as_it_streams(
    tmp_path: Path, hostile_http: str, tool: str
) -> None:
    """An HTTP server answering 128 MiB (a JSON body, one event on one line, one event of
    many lines) costs Fleetwarden a few megabytes: the call is answered an error, audited
    too_large, and the same session serves the next call."""
    server = McpServer("hostile", HttpServer(hostile_http), timeout=15.0)
    grants = {AGENT: [McpGrant("hostile")]}
    async with (
        door_on_endpoint(tmp_path, [server], grants) as door,
        aiohttp.ClientSession() as http,
    ):
        agent = await Agent(http, door, "hostile").initialize()
        async with Peak().watching() as peak:
            status, answer = await agent.call(7, tool, mib=FLOOD_MIB)
        assert status == 200 and f"over {MAX_MESSAGE} bytes" in cut_said(answer)
        assert peak.growth < GROWTH, f"grew {peak.growth / 2**20:.0f} MiB"
        assert await agent.echo(8) == "still here"
        audit = await eventually(lambda: len(door.audits) == 2 and door.audits, "both audited")
        assert [(a.name, a.outcome) for a in audit] == [
            (tool, Outcome.TOO_LARGE),
            ("echo", Outcome.OK),
        ]


async def test_a_compressed_answer_is_refused_unread(tmp_path: Path, hostile_http: str) -> None:
    """An HTTP server sending gzip though asked for no compression (130 kB that inflate to
    128 MiB) costs Fleetwarden nothing of it: the call is answered an error naming why, and
    the session serves the next call."""
    server = McpServer("hostile", HttpServer(hostile_http), timeout=15.0)
    grants = {AGENT: [McpGrant("hostile")]}
    async with (
        door_on_endpoint(tmp_path, [server], grants) as door,
        aiohttp.ClientSession() as http,
    ):
        agent = await Agent(http, door, "hostile").initialize()
        async with Peak().watching() as peak:
            status, answer = await agent.call(7, "bomb", mib=FLOOD_MIB)
        assert status == 200 and "compressed" in cut_said(answer)
        assert peak.growth < GROWTH, f"grew {peak.growth / 2**20:.0f} MiB"
        assert await agent.echo(8) == "still here"
        audit = await eventually(lambda: len(door.audits) == 2 and door.audits, "both audited")
        assert [a.outcome for a in audit] == [Outcome.ERROR, Outcome.OK]
