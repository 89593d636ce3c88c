"""The real opencode with Fleetwarden's own gate plugin (fleet/gates/opencode.mjs): a call
of a granted MCP server's tool (``srv_echo``) passes the gate in mode ``ask`` — the MCP
door is the one that asks — and reaches the server; with the server not granted the gate
keeps it from the server as before (no ask door here to ask through)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet.runtimes.gates import OPENCODE_PLUGIN
from tests.fakes.mcp.recorder import McpRecorder
from tests.fakes.provider.server import FakeProvider
from tests.integration.runtimes.test_mcp_clis import (
    answered,
    cli_provider,
    echo,
    home,
    opencode_config,
    opencode_env,
    server,
    work,
)
from tests.integration.runtimes.test_real_clis import check, cli, run_cli

__all__ = ["cli_provider", "home", "server", "work"]  # fixtures

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]


@pytest.mark.parametrize(("granted", "called"), [(["srv"], True), ([], False)])
async def test_fleetwardens_gate_lets_a_granted_servers_tool_through_to_the_door(
    cli_provider: FakeProvider,
    server: McpRecorder,
    home: Path,
    work: Path,
    granted: list[str],
    called: bool,
) -> None:
    """Mode ``ask``: ``srv_echo`` runs unasked when ``srv`` is granted; otherwise the gate
    stops it, and the server gets no call."""
    config = {**opencode_config(cli_provider, server), "plugin": [OPENCODE_PLUGIN.as_uri()]}
    cli_provider.add(echo("srv_echo"))
    policy = {"mode": "ask", "allow": [], "deny": [], "workdir": str(work), "mcp": granted}
    env = opencode_env(home, config, FLEETWARDEN_PERMISSIONS=json.dumps(policy))
    run = await run_cli([cli("opencode"), "run", "go", "--format", "json"], work, env)
    check(run, cli_provider, "/v1/messages")
    assert [c.arguments for c in server.calls] == ([{"text": "hello"}] if called else [])
    if called:
        assert answered(cli_provider)
