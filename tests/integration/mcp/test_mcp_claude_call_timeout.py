"""The real Claude Code's own timeout on an MCP call (``MCP_TOOL_TIMEOUT``): a call held at the
door while it is asked ends on Claude's side when that timeout passes — Claude cancels it
(``notifications/cancelled``) — and the door withdraws the ask, so a late yes runs nothing.
Fleetwarden therefore sets it past the agent's approval timeout
(:func:`fleet.runtimes.mcp_launch.call_seconds`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleet.model import PermissionMode
from fleet.runtimes.claude import ClaudeRuntime
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn
from tests.integration.mcp.cli_rig import (
    asked_then_withdrawn,
    asking,
    cancelled_at_the_door,
    claude_session,
    say_go,
    tracker_door,
    until_result,
)
from tests.integration.mcp.rig import HttpMcp
from tests.integration.mcp.test_mcp_launch_clis import SERVER, agent, launched
from tests.integration.mcp.test_mcp_launch_clis import cli_provider as cli_provider  # fixtures
from tests.integration.mcp.test_mcp_launch_clis import skill_dir as skill_dir
from tests.integration.runtimes.test_real_clis import TIMEOUT

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]


async def test_claude_gives_up_on_a_call_asked_past_its_timeout_and_the_ask_is_withdrawn(
    cli_provider: FakeProvider, http_mcp: HttpMcp, skill_dir: Path, tmp_path: Path
) -> None:
    """With MCP_TOOL_TIMEOUT=2000, Claude Code gives up on a call the door holds while
    asking, within seconds: the door withdraws the ask and audits the call cancelled (never
    relayed), and Claude's run goes on to its result."""
    cli_provider.add(Turn(text="", tool=ToolCall(f"mcp__{SERVER}__echo", {"text": "too late"})))
    async with (
        asking(tmp_path) as asks,
        tracker_door(tmp_path, http_mcp, [asks.ask]) as door,
    ):
        spec = agent("claude", skill_dir, permissions=PermissionMode.ASK, sandbox="none")
        plan, _ = launched(
            ClaudeRuntime(), spec, door, tmp_path, {"anthropic": cli_provider.base_url}
        )
        env = {**plan.env, "MCP_TOOL_TIMEOUT": "2000"}
        async with claude_session(plan.argv, plan.cwd, env) as proc, asyncio.timeout(TIMEOUT):
            say_go(proc)
            request = await asked_then_withdrawn(asks.approvals, "Claude hung up")
            await until_result(proc)
        await cancelled_at_the_door(asks.approvals, door, request)
