"""The real Claude Code's own timeout on an MCP call (``MCP_TOOL_TIMEOUT``): a call held at the
door while it is asked ends on Claude's side when that timeout passes — Claude cancels it
(``notifications/cancelled``) — and the door withdraws the ask, so a late yes runs nothing.
Fleetwarden therefore sets it past the agent's approval timeout
(:func:`fleet.runtimes.mcp_launch.call_seconds`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from fleet.approvals.ask_door import AskTerms
from fleet.approvals.service import Approvals
from fleet.clock import SystemClock
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalState
from fleet.mcp.asking import McpAsks
from fleet.mcp.hooks import Outcome
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from fleet.model import PermissionMode
from fleet.runtimes.claude import ClaudeRuntime
from tests.fakes.provider import FakeProvider, ToolCall, Turn
from tests.integration.mcp.rig import CREDENTIAL_ENV, HttpMcp, door_on_endpoint
from tests.integration.mcp.test_mcp_launch_clis import AGENT, SERVER, agent, launched
from tests.integration.mcp.test_mcp_launch_clis import fake as fake  # fixtures
from tests.integration.mcp.test_mcp_launch_clis import skill_dir as skill_dir
from tests.integration.runtimes.test_real_clis import TIMEOUT
from tests.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]


async def test_claude_gives_up_on_a_call_asked_past_its_timeout_and_the_ask_is_withdrawn(
    fake: FakeProvider, http_mcp: HttpMcp, skill_dir: Path, tmp_path: Path
) -> None:
    """With MCP_TOOL_TIMEOUT=2000, Claude Code gives up on a call the door holds while
    asking, within seconds: the door withdraws the ask and audits the call cancelled (never
    relayed), and Claude's run goes on to its result."""
    fake.add(Turn(text="", tool=ToolCall(f"mcp__{SERVER}__echo", {"text": "too late"})))
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    approvals = Approvals(ledger.approvals, SystemClock())

    async def terms(name: str) -> AskTerms:
        return AskTerms(1, 600.0, 5, None, (), (), PermissionMode.ASK)

    ask = McpAsks(approvals, terms, SystemClock())
    await ask.start()
    server = McpServer(
        SERVER, HttpServer(http_mcp.url, headers_env={"Authorization": CREDENTIAL_ENV})
    )
    try:
        async with door_on_endpoint(
            tmp_path / "state", [server], {AGENT: [McpGrant(SERVER)]}, asks=[ask]
        ) as door:
            spec = agent("claude", skill_dir, permissions=PermissionMode.ASK, sandbox="none")
            plan, _ = launched(ClaudeRuntime(), spec, door, tmp_path, {"anthropic": fake.base_url})
            env = {**plan.env, "MCP_TOOL_TIMEOUT": "2000"}
            proc = await asyncio.create_subprocess_exec(
                *plan.argv,
                cwd=plan.cwd,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
            assert proc.stdin is not None and proc.stdout is not None
            event: dict[str, Any] = {}
            try:
                async with asyncio.timeout(TIMEOUT):
                    turn = {"type": "user", "message": {"role": "user", "content": "go"}}
                    proc.stdin.write(json.dumps(turn).encode() + b"\n")
                    [request] = await eventually(
                        lambda: approvals.pending(AGENT), "the call asked", within=TIMEOUT
                    )

                    async def withdrawn() -> bool:
                        ended = await approvals.get(request.id)
                        return ended.state is ApprovalState.CLOSED

                    await eventually(withdrawn, "the ask withdrawn when Claude hung up")
                    while event.get("type") != "result":
                        line = await proc.stdout.readline()
                        assert line, "claude ended before its result"
                        event = json.loads(line)
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
            ended = await approvals.get(request.id)
            assert ended.how == "withdrawn", ended
            calls = [a for a in door.audits if a.method == "tools/call"]
            # cancelled at the door: never relayed to the server
            assert [(a.outcome, a.name) for a in calls] == [(Outcome.CANCELLED, "echo")]
    finally:
        await ledger.close()
