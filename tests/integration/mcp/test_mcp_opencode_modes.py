"""The real opencode, launched with the config Fleetwarden's runtime writes (its own
``permission`` map and gate, not a test's ``"*": "allow"``), runs a granted server's tool
through the door in every permission mode: opencode itself neither asks nor refuses it —
the door is the one place that decides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet.model import PermissionMode
from fleet.runtimes.opencode import OpencodeRuntime
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn
from tests.integration.mcp.rig import Door, HttpMcp
from tests.integration.mcp.test_mcp_launch_clis import (
    REPLY,
    SERVER,
    agent,
    audited_call,
    launched,
)
from tests.integration.mcp.test_mcp_launch_clis import cli_provider as cli_provider
from tests.integration.mcp.test_mcp_launch_clis import door as door  # fixtures
from tests.integration.mcp.test_mcp_launch_clis import skill_dir as skill_dir
from tests.integration.runtimes.test_real_clis import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]


@pytest.mark.parametrize(
    "mode", [PermissionMode.ASK, PermissionMode.EDITS, PermissionMode.READ_ONLY]
)
async def test_opencode_runs_a_granted_tool_with_fleetwardens_own_permission_map(
    mode: PermissionMode,
    cli_provider: FakeProvider,
    door: Door,
    http_mcp: HttpMcp,
    skill_dir: Path,
    tmp_path: Path,
) -> None:
    """Under ask, edits and read-only, opencode with Fleetwarden's generated config calls
    my-tracker_echo and the call reaches the server through the door (its result back to
    the model), never asked nor refused by opencode's own permission map."""
    cli_provider.add(Turn(text="", tool=ToolCall(f"{SERVER}_echo", {"text": "hello"})))
    spec = agent("opencode", skill_dir, permissions=mode, model="claude-sonnet-4-5")
    plan, _ = launched(
        OpencodeRuntime(), spec, door, tmp_path, {"anthropic": cli_provider.base_url}
    )
    permission = json.loads(plan.env["OPENCODE_CONFIG_CONTENT"])["permission"]
    assert "*" not in permission  # Fleetwarden's own map, not a test's catch-all
    run = await run_cli(plan.argv, plan.cwd, plan.env)
    assert run.returncode == 0, run.stderr[-4000:]
    assert REPLY in run.stdout, run.stdout
    audited_call(door, "hello")
    results = [json.dumps(r.body) for r in cli_provider.requests if r.api is not None]
    assert any("hello" in body and "tool_result" in body for body in results[1:])
