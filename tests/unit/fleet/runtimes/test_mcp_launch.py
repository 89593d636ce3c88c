"""Each runtime's launch plan gives the agent its granted MCP servers at its MCP door with
the run's token only, in files of mode 0600 and never in argv, and refuses what it cannot
give (pi, a launch without the heartbeat endpoint)."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from fleet.errors import LaunchFailed
from fleet.mcp.config.schema import MAX_TIMEOUT
from fleet.model import LaunchPlan, McpGrant, PermissionMode
from fleet.runs.layout import write_files
from fleet.runtimes import Runtime, RuntimeContext
from fleet.runtimes.claude import ClaudeRuntime
from fleet.runtimes.codex import CodexRuntime
from fleet.runtimes.command import CommandRuntime
from fleet.runtimes.opencode import OpencodeRuntime
from fleet.runtimes.pi import PiRuntime
from tests.unit.fleet.runtimes.test_runtimes import HB_TOKEN, full, spec, with_
from tests.unit.fleet.runtimes.test_runtimes import ctx as ctx  # a fixture of this module too

GRANTS = (McpGrant("github"), McpGrant("my-docs", frozenset({"search"})))
DOOR = "http://127.0.0.1:41234/mcp/coder-1/"
# What a server's own URL and credential would look like, were they leaked into a plan.
SERVER_URL = "https://mcp.example.com"
SERVER_SECRET = "ghp_server_credential_0123456789"
ENVIRON = {"GITHUB_MCP_TOKEN": SERVER_SECRET, "GITHUB_MCP_URL": SERVER_URL}


def granted(runtime: str, **kwargs: object) -> object:
    argv = ("python3", "bot.py") if runtime == "command" else ()
    return spec(runtime, mcp=GRANTS, argv=argv, **kwargs)


def planned(runtime: Runtime, ctx: RuntimeContext, **kwargs: object) -> LaunchPlan:
    context = with_(full(ctx), environ={**ctx.environ, **ENVIRON})
    return runtime.plan(granted(runtime.name, **kwargs), context)  # type: ignore[arg-type]


def no_leak(plan: LaunchPlan) -> None:
    everything = " ".join([*plan.argv, *plan.env.values(), *plan.files.values()])
    assert SERVER_SECRET not in everything and SERVER_URL not in everything
    assert HB_TOKEN not in " ".join(plan.argv)


@pytest.mark.parametrize(
    "runtime", [ClaudeRuntime(), CodexRuntime(), OpencodeRuntime(), CommandRuntime()]
)
def test_every_runtime_writes_mcp_json_with_the_run_token(
    runtime: Runtime, ctx: RuntimeContext
) -> None:
    """Every runtime writes $HOME/.fleetwarden/mcp.json (mode 0600): each granted server at
    the agent's door, type http, Bearer the run's token, and nothing of the servers' own."""
    plan = planned(runtime, ctx)
    path = ctx.home / ".fleetwarden" / "mcp.json"
    servers = json.loads(plan.files[path])["mcpServers"]
    bearer = {"Authorization": f"Bearer {HB_TOKEN}"}
    assert servers == {
        "github": {"type": "http", "url": DOOR + "github", "headers": bearer},
        "my-docs": {"type": "http", "url": DOOR + "my-docs", "headers": bearer},
    }
    no_leak(plan)
    ctx.home.mkdir(parents=True)
    write_files(ctx.home, plan.files)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_claude_gets_the_file_after_strict_mcp_config(ctx: RuntimeContext) -> None:
    """Claude Code is given the file by path right after --strict-mcp-config (the token never
    in argv), waits for the servers at start, and its prompt stays after `--`."""
    path = str(ctx.home / ".fleetwarden" / "mcp.json")
    plan = planned(ClaudeRuntime(), ctx)
    at = plan.argv.index("--strict-mcp-config")
    assert plan.argv[at + 1 : at + 3] == ("--mcp-config", path)
    assert plan.env["MCP_CONNECTION_NONBLOCKING"] == "0"
    tui = ClaudeRuntime().plan(
        granted("claude"),  # type: ignore[arg-type]
        with_(full(ctx), tty=True),
    )
    assert tui.argv[-2:] == ("--", "fix the bug")
    assert tui.argv[tui.argv.index("--mcp-config") + 1] == path
    follow = ClaudeRuntime().follow_up(granted("claude"), full(ctx), None, "more")  # type: ignore[arg-type]
    assert follow is not None and "--mcp-config" in follow.argv
    assert Path(path) in follow.files


def test_claude_without_grants_names_no_server(ctx: RuntimeContext) -> None:
    """An agent granted nothing gets no --mcp-config and no mcp.json, --strict-mcp-config kept."""
    plan = ClaudeRuntime().plan(spec("claude"), full(ctx))
    assert "--mcp-config" not in plan.argv and "--strict-mcp-config" in plan.argv
    assert not any(p.name == "mcp.json" for p in plan.files)


def test_codex_config_names_the_door_and_the_token_variable(ctx: RuntimeContext) -> None:
    """Codex's config.toml has one required [mcp_servers.NAME] per grant at the door, its
    bearer read from FLEETWARDEN_HEARTBEAT_TOKEN (which holds the run's token)."""
    plan = planned(CodexRuntime(), ctx, sandbox="bwrap")
    config = tomllib.loads(plan.files[ctx.home / ".codex" / "config.toml"])
    servers = config["mcp_servers"]
    assert set(servers) == {"github", "my-docs"}
    assert servers["my-docs"]["url"] == DOOR + "my-docs"
    assert servers["github"]["bearer_token_env_var"] == "FLEETWARDEN_HEARTBEAT_TOKEN"
    assert servers["github"]["required"] is True
    assert servers["github"]["default_tools_approval_mode"] == "approve"  # the door asks
    assert plan.env["FLEETWARDEN_HEARTBEAT_TOKEN"] == HB_TOKEN
    assert HB_TOKEN not in plan.files[ctx.home / ".codex" / "config.toml"]
    no_leak(plan)
    follow = CodexRuntime().follow_up(granted("codex"), full(ctx), None, "more")  # type: ignore[arg-type]
    assert follow is not None
    assert "mcp_servers" in tomllib.loads(follow.files[ctx.home / ".codex" / "config.toml"])


def test_opencode_inline_config_has_the_remote_servers(ctx: RuntimeContext) -> None:
    """opencode's inline config holds each grant as a remote server at the door, with the
    run's token."""
    plan = planned(OpencodeRuntime(), ctx)
    inline = json.loads(plan.env["OPENCODE_CONFIG_CONTENT"])
    assert inline["mcp"]["github"] == {
        "type": "remote",
        "url": DOOR + "github",
        "headers": {"Authorization": f"Bearer {HB_TOKEN}"},
        "timeout": (1800 + 3600 + 60) * 1000,
    }
    no_leak(plan)


def test_pi_with_grants_is_refused_at_launch(ctx: RuntimeContext) -> None:
    """A pi agent granted servers (an ad hoc spawn, a spec made in code) is refused with the
    config's reason and the fix."""
    with pytest.raises(LaunchFailed, match=r"pi has no MCP of its own.*github, my-docs"):
        planned(PiRuntime(), ctx)


@pytest.mark.parametrize("runtime", [ClaudeRuntime(), CodexRuntime(), CommandRuntime()])
def test_grants_without_a_heartbeat_endpoint_refuse_the_launch(
    runtime: Runtime, ctx: RuntimeContext
) -> None:
    """Without the heartbeat endpoint (where the door is) a granted agent is refused, saying
    why and how, never started without its tools."""
    with pytest.raises(LaunchFailed, match="granted MCP servers \\(github, my-docs\\)"):
        runtime.plan(granted(runtime.name), ctx)  # type: ignore[arg-type]


def test_a_heartbeat_url_off_loopback_is_refused(ctx: RuntimeContext) -> None:
    """A heartbeat URL that is not loopback is never written as an MCP server."""
    bad = with_(full(ctx), heartbeat_url="http://10.0.0.1:41234/heartbeat/coder-1")
    with pytest.raises(LaunchFailed, match=r"not http://127\.0\.0\.1"):
        CommandRuntime().plan(granted("command"), bad)  # type: ignore[arg-type]


def test_each_cli_waits_for_a_call_past_its_approval_and_the_server(ctx: RuntimeContext) -> None:
    """Each CLI waits for an MCP call at least the agent's approval timeout plus the longest
    server timeout plus a margin: Claude's MCP_TOOL_TIMEOUT and idle timeout (ms), Codex's
    tool_timeout_sec, opencode's per-server timeout (ms); a slow chat yes is not cut."""
    least = 90 + MAX_TIMEOUT + 60
    claude = planned(ClaudeRuntime(), ctx, approval_timeout=90.0)
    assert int(claude.env["MCP_TOOL_TIMEOUT"]) >= least * 1000
    assert int(claude.env["CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT"]) >= least * 1000
    codex = planned(CodexRuntime(), ctx, sandbox="bwrap", approval_timeout=90.0)
    servers = tomllib.loads(codex.files[ctx.home / ".codex" / "config.toml"])["mcp_servers"]
    assert all(server["tool_timeout_sec"] >= least for server in servers.values())
    opencode = planned(OpencodeRuntime(), ctx, approval_timeout=90.0)
    inline = json.loads(opencode.env["OPENCODE_CONFIG_CONTENT"])["mcp"]
    assert all(server["timeout"] >= least * 1000 for server in inline.values())
    longer = planned(ClaudeRuntime(), ctx, approval_timeout=7200.0)
    assert int(longer.env["MCP_TOOL_TIMEOUT"]) >= (7200 + MAX_TIMEOUT + 60) * 1000
    assert "MCP_TOOL_TIMEOUT" not in ClaudeRuntime().plan(spec("claude"), full(ctx)).env


@pytest.mark.parametrize("tty", [True, False])
def test_claude_settings_allow_the_granted_servers_tools(ctx: RuntimeContext, tty: bool) -> None:
    """Claude's settings allow every tool of each granted server (mcp__<server>), on the TUI
    (whose hook would otherwise ask) and headless alike, the agent's deny rules kept: the
    door is the one place that asks; an agent granted nothing gets no such rule."""
    context = with_(full(ctx), tty=tty)
    plan = ClaudeRuntime().plan(
        granted("claude", permissions=PermissionMode.ASK, deny=("mcp__github__delete",)),  # type: ignore[arg-type]
        context,
    )
    rules = json.loads(plan.files[ctx.home / ".claude" / "settings.json"])["permissions"]
    assert {"mcp__github", "mcp__my-docs"} <= set(rules["allow"])
    assert "mcp__github__delete" in rules["deny"]
    bare = ClaudeRuntime().plan(spec("claude", permissions=PermissionMode.ASK), context)
    rules = json.loads(bare.files[ctx.home / ".claude" / "settings.json"])["permissions"]
    assert not any(rule.startswith("mcp__") for rule in rules["allow"])
