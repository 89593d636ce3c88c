"""How the pinned Codex's live session (``codex app-server``) asks before an MCP call, as
docs/mcp-clis.md says: a server request ``mcpServer/elicitation/request`` whose
``_meta.codex_approval_kind`` is ``mcp_tool_call``, answered with an MCP elicitation
result. The process is planned by Fleetwarden's Codex runtime, its ``config.toml`` given a
recording MCP server; the elicitation is answered here, before Fleetwarden's protocol sees
it, so this pins Codex's side whatever the protocol does with it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from fleet.model import LaunchPlan, McpGrant, PermissionMode
from fleet.runs.layout import write_files
from fleet.runtimes.codex import CodexRuntime
from fleet.sessions.base import Effect, Write
from fleet.sessions.codex import protocol
from tests.fakes.mcp.recorder import McpRecorder
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn
from tests.integration.runtimes.codex_live import ACCEPT, LiveCodex
from tests.integration.runtimes.test_codex_live_session import ended, spec
from tests.integration.runtimes.test_real_clis import bin_dir, cli

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

ELICITATION = "mcpServer/elicitation/request"
CALL = Turn(text="", tool=ToolCall("echo", {"text": "hello"}, namespace="mcp__srv"))


@dataclass
class McpCodex(LiveCodex):
    """A live Codex whose config also names ``server`` as ``srv``; each elicitation it sends
    is kept in ``asked`` and answered with ``answer``, never reaching the protocol."""

    server: McpRecorder | None = None
    answer: dict[str, Any] | None = None  # None: the protocol answers it, as Fleetwarden runs
    asked: list[dict[str, Any]] | None = None
    granted: tuple[str, ...] = ()  # the MCP servers the protocol is told the agent has

    async def __aenter__(self) -> McpCodex:
        cli("codex")
        assert self.server is not None
        ctx = self.ctx or self._context()
        plan = CodexRuntime(str(bin_dir() / "codex")).plan(self.spec, ctx)
        files = dict(plan.files)
        [config] = [path for path in files if path.name == "config.toml"]
        files[config] += f'\n[mcp_servers.srv]\nurl = "{self.server.url}"\n'
        write_files(ctx.home, files)
        self.asked = []
        try:
            await self._start(plan)
        except BaseException:  # no ``async with`` body: the process ends here
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self, plan: LaunchPlan) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *plan.argv,
            env=dict(plan.env),
            cwd=plan.cwd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        grants = tuple(McpGrant(name) for name in self.granted)
        self.protocol = protocol(replace(self.spec, mcp=grants), self.work)
        feed = self.protocol.feed

        def intercept(line: str) -> list[Effect]:
            message = json.loads(line) if line.startswith("{") else {}
            if message.get("method") != ELICITATION:
                return list(feed(line))
            assert self.asked is not None
            self.asked.append(message)
            if self.answer is None:
                return list(feed(line))
            return [Write(json.dumps({"id": message["id"], "result": self.answer}))]

        self.protocol.feed = intercept
        await self.apply(self.protocol.opening(plan.prompt))


@pytest.mark.parametrize(
    ("answer", "called"),
    [({"action": "accept", "content": {}}, True), ({"action": "decline"}, False)],
    ids=["accept", "decline"],
)
async def test_codex_asks_an_mcp_call_as_an_elicitation(
    tmp_path: Path, answer: dict[str, Any], called: bool
) -> None:
    """Under ``ask`` an MCP call is an elicitation naming the server, the tool and its
    arguments; accepted, the call reaches the server, declined, it does not."""
    async with (
        FakeProvider(CALL, default=Turn(text="done"), accept=ACCEPT) as fake,
        McpRecorder() as server,
        McpCodex(spec(PermissionMode.ASK), fake, tmp_path, server=server, answer=answer) as live,
    ):
        await live.until(ended)
    assert live.asked is not None
    [asked] = live.asked
    params = asked["params"]
    assert params["serverName"] == "srv"
    meta = params["_meta"]
    assert meta["codex_approval_kind"] == "mcp_tool_call"
    assert (meta["tool_name"], meta["tool_params"]) == ("echo", {"text": "hello"})
    assert [c.arguments for c in server.calls] == ([{"text": "hello"}] if called else [])


@pytest.mark.parametrize(
    ("granted", "called"), [(("srv",), True), ((), False)], ids=["granted", "not-granted"]
)
async def test_fleetwardens_protocol_answers_codexs_ask_for_an_mcp_call(
    tmp_path: Path, granted: tuple[str, ...], called: bool
) -> None:
    """Fleetwarden's own protocol answers the elicitation (no longer -32601): a granted
    server's call is accepted, the door being the one that asks, and reaches the server;
    a server the agent was not given is declined and never called."""
    async with (
        FakeProvider(CALL, default=Turn(text="done"), accept=ACCEPT) as fake,
        McpRecorder() as server,
        McpCodex(spec(PermissionMode.ASK), fake, tmp_path, server=server, granted=granted) as live,
    ):
        await live.until(ended)
    assert live.asked is not None and len(live.asked) == 1
    assert [c.arguments for c in server.calls] == ([{"text": "hello"}] if called else [])
