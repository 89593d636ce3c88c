"""The real Claude Code, under ``ask``, ``edits`` and ``read-only`` with the settings
Fleetwarden's runtime writes, runs a granted server's tool without asking about it (no
``can_use_tool``: the same check that sends the TUI's ``PermissionRequest`` hook): the door
is the one place that asks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fleet.model import PermissionMode
from fleet.runtimes.claude import ClaudeRuntime
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn
from tests.integration.mcp.cli_rig import claude_session, say_go, until_result
from tests.integration.mcp.rig import Door, HttpMcp
from tests.integration.mcp.test_mcp_launch_clis import REPLY, SERVER, agent, audited_call, launched
from tests.integration.mcp.test_mcp_launch_clis import cli_provider as cli_provider
from tests.integration.mcp.test_mcp_launch_clis import door as door  # fixtures
from tests.integration.mcp.test_mcp_launch_clis import skill_dir as skill_dir
from tests.integration.runtimes.test_real_clis import TIMEOUT

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]


@pytest.mark.parametrize(
    "mode", [PermissionMode.ASK, PermissionMode.EDITS, PermissionMode.READ_ONLY]
)
async def test_claude_runs_a_granted_tool_without_asking(
    mode: PermissionMode,
    cli_provider: FakeProvider,
    door: Door,
    http_mcp: HttpMcp,
    skill_dir: Path,
    tmp_path: Path,
) -> None:
    """Claude Code under ask, edits and read-only (its modes default, acceptEdits, plan),
    started as ClaudeRuntime plans it, calls mcp__my-tracker__echo: it asks nothing about
    it (an ask would be denied here), and the call reaches the server through the door."""
    cli_provider.add(Turn(text="", tool=ToolCall(f"mcp__{SERVER}__echo", {"text": "hello"})))
    spec = agent("claude", skill_dir, permissions=mode, sandbox="none")
    plan, _ = launched(ClaudeRuntime(), spec, door, tmp_path, {"anthropic": cli_provider.base_url})
    async with claude_session(plan.argv, plan.cwd, plan.env) as proc, asyncio.timeout(TIMEOUT):
        asked: list[str] = []

        def deny_any_ask(event: dict[str, Any]) -> None:
            request = event.get("request") or {}
            if event.get("type") == "control_request" and request.get("subtype") == (
                "can_use_tool"
            ):
                asked.append(str(request.get("tool_name")))
                answer = {"behavior": "deny", "message": "asked twice"}
                reply = {
                    "type": "control_response",
                    "response": {
                        "subtype": "success",
                        "request_id": event["request_id"],
                        "response": answer,
                    },
                }
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(reply).encode() + b"\n")

        say_go(proc)
        event = await until_result(proc, deny_any_ask)
    assert asked == [], f"Claude Code asked about {asked}"
    assert event["result"] == REPLY and event["permission_denials"] == [], event
    audited_call(door, "hello")
