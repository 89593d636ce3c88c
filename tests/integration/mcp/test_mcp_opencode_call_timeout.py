"""The real opencode's own timeout on an MCP call (its server's ``timeout``, in ms): a call
held at the door while it is asked ends on opencode's side when that timeout passes, and the
door withdraws the ask, so a late yes runs nothing. Fleetwarden therefore sets it past the
agent's approval timeout (:func:`fleet.runtimes.mcp_launch.call_seconds`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet.model import PermissionMode
from fleet.runtimes.opencode import OpencodeRuntime
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn
from tests.integration.mcp.cli_rig import asking, gives_up, tracker_door
from tests.integration.mcp.rig import HttpMcp
from tests.integration.mcp.test_mcp_launch_clis import SERVER, agent, launched
from tests.integration.mcp.test_mcp_launch_clis import cli_provider as cli_provider  # fixtures
from tests.integration.mcp.test_mcp_launch_clis import skill_dir as skill_dir
from tests.integration.runtimes.test_real_clis import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]


async def test_opencode_gives_up_on_a_call_asked_past_its_timeout_and_the_ask_is_withdrawn(
    cli_provider: FakeProvider, http_mcp: HttpMcp, skill_dir: Path, tmp_path: Path
) -> None:
    """With the server's timeout 2000 in the inline config OpencodeRuntime writes,
    `opencode run` gives up on a call the door holds while asking, within seconds: the door
    withdraws the ask and audits the call cancelled (never relayed), and the run ends."""
    cli_provider.add(Turn(text="", tool=ToolCall(f"{SERVER}_echo", {"text": "too late"})))
    async with (
        asking(tmp_path) as asks,
        tracker_door(tmp_path, http_mcp, [asks.ask]) as door,
    ):
        spec = agent(
            "opencode", skill_dir, permissions=PermissionMode.ASK, model="claude-sonnet-4-5"
        )
        plan, _ = launched(
            OpencodeRuntime(), spec, door, tmp_path, {"anthropic": cli_provider.base_url}
        )
        inline = json.loads(plan.env["OPENCODE_CONFIG_CONTENT"])
        assert inline["mcp"][SERVER]["timeout"] > 2000
        inline["mcp"][SERVER]["timeout"] = 2000
        env = {**plan.env, "OPENCODE_CONFIG_CONTENT": json.dumps(inline)}
        await gives_up(asks.approvals, door, run_cli(plan.argv, plan.cwd, env), "opencode")
