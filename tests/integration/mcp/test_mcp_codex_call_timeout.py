"""The real Codex's own timeout on an MCP call (``tool_timeout_sec``): a call held at the door
while it is asked ends on Codex's side when that timeout passes, and the door withdraws the
ask, so a late yes runs nothing. Fleetwarden therefore sets it past the agent's approval
timeout (:func:`fleet.runtimes.mcp_launch.call_seconds`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleet.runtimes.codex import CodexRuntime
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn
from tests.integration.mcp.cli_rig import asking, gives_up, tracker_door
from tests.integration.mcp.rig import HttpMcp
from tests.integration.mcp.test_mcp_launch_clis import agent, launched
from tests.integration.mcp.test_mcp_launch_clis import cli_provider as cli_provider  # fixtures
from tests.integration.mcp.test_mcp_launch_clis import skill_dir as skill_dir
from tests.integration.runtimes.test_real_clis import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]


async def test_codex_gives_up_on_a_call_asked_past_its_timeout_and_the_ask_is_withdrawn(
    cli_provider: FakeProvider, http_mcp: HttpMcp, skill_dir: Path, tmp_path: Path
) -> None:
    """With tool_timeout_sec = 2 in the config.toml CodexRuntime writes, `codex exec` gives
    up on a call the door holds while asking, within seconds: the door withdraws the ask and
    audits the call cancelled (never relayed), and the run ends."""
    cli_provider.add(
        Turn(text="", tool=ToolCall("echo", {"text": "too late"}, namespace="mcp__my_tracker"))
    )
    async with (
        asking(tmp_path) as asks,
        tracker_door(tmp_path, http_mcp, [asks.ask]) as door,
    ):
        spec = agent("codex", skill_dir, sandbox="bwrap", model="gpt-5-codex")
        runtime = CodexRuntime()
        plan, ctx = launched(runtime, spec, door, tmp_path, {"openai": cli_provider.base_url})
        config = ctx.home / ".codex" / "config.toml"
        text = config.read_text()
        assert "tool_timeout_sec = " in text
        config.write_text(re.sub(r"tool_timeout_sec = [0-9]+", "tool_timeout_sec = 2", text))
        run = run_cli(runtime.headless_argv(spec), plan.cwd, plan.env)
        await gives_up(asks.approvals, door, run, "Codex")
