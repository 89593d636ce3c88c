"""A `tools:` name misspelt against the real server-everything (`get_env` for its
`get-env`): `check-config --online` asks the server for its tools and names the typo at
its line with the tool meant; plain `check-config` says tool names are checked online;
and under the door a call of the real tool, refused as off the list, names the tool the
config spells close to it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from fleet.mcp.model import McpGrant, McpServer, StdioServer
from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.integration.mcp.rig import door_on_endpoint, everything_bin, sdk_client, text_of

pytestmark = pytest.mark.integration

AGENT = "coder"


def _check(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "mcp:\n"
        "  everything:\n"
        f"    command: {everything_bin()}\n"
        "    sandbox: none\n"
        "    tools: [echo, get_env]\n"
        "agents:\n"
        "  - name: coder\n"
        "    mcp: [everything]\n"
    )
    return subprocess.run(
        [str(FLEETWARDEN), "check-config", "--config", str(config), *args],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_online_names_a_misspelt_tool_at_its_line(tmp_path: Path) -> None:
    """`check-config --online` exits 2 naming `get_env` at line 6 (tools[1]) with 'did you
    mean get-env?'; `echo`, which the server lists, is not named."""
    done = _check(tmp_path, "--online")
    assert done.returncode == 2, (done.stdout, done.stderr)
    config = tmp_path / "fleetwarden.yaml"
    assert (
        f"{config}:6: mcp.everything.tools[1]: MCP server everything lists no tool 'get_env': "
        "did you mean 'get-env'?"
    ) in done.stderr, done.stderr
    assert "'echo'" not in done.stderr and "Traceback" not in done.stderr


def test_offline_check_says_tool_names_are_checked_online(tmp_path: Path) -> None:
    """Plain `check-config` passes (it cannot know the server's tools) and says that
    `--online` asks the server for them."""
    done = _check(tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        "mcp tools:  not checked against the servers (`check-config --online` asks "
        "everything for the tools it lists)"
    ) in done.stdout, done.stdout


async def test_a_refused_call_names_the_tool_the_config_misspelt(tmp_path: Path) -> None:
    """With `tools: [echo, get_env]`, a call of the server's `get-env` is refused with
    "did you mean 'get_env'?" and where that spelling is; `echo` still works."""
    server = McpServer(
        "everything",
        StdioServer(everything_bin(), cwd=str(tmp_path)),
        tools=frozenset({"echo", "get_env"}),
    )
    grants = {AGENT: [McpGrant("everything")]}
    async with (
        door_on_endpoint(tmp_path, [server], grants, environ={}) as door,
        sdk_client(door.url(AGENT, "everything"), door.token(AGENT)) as session,
    ):
        with pytest.raises(MCPError) as refused:
            await session.call_tool("get-env", {})
        echoed = await session.call_tool("echo", {"message": "hi"})
    said = refused.value.message
    assert "the tool get-env of the MCP server everything is not allowed" in said, said
    assert "did you mean 'get_env'?" in said
    assert "the config's tools: (mcp.everything, or the agent's grant) names it 'get_env'" in said
    assert text_of(echoed) == "Echo: hi"
