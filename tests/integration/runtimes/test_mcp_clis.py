"""The real agent CLIs take MCP servers and skills as docs/mcp-clis.md says they do.

Each pinned CLI runs headless against the fake provider, whose scripted turn makes the
model call an MCP tool, with a recording MCP server on 127.0.0.1
(:mod:`tests.fakes.mcp.recorder`): the server proves which config the CLI read, the
credential it sent and the call it made; the provider's requests show the tool's name as
the model is given it and its result coming back. A new pin that changes any of this
fails here before Fleetwarden relies on the old behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.mcp.recorder import McpRecorder
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn
from tests.integration.mcp.cli_rig import claude_session
from tests.integration.runtimes.test_real_clis import (
    API_KEY,
    CLAUDE_ENV,
    CODEX_CONFIG,
    REPLY,
    TIMEOUT,
    check,
    clean_env,
    cli,
    cli_provider,
    home,
    opencode_on,
    run_cli,
    work,
)
from tests.integration.runtimes.test_real_clis import OPENCODE_ENV as REAL_OPENCODE_ENV

__all__ = [
    "CLAUDE_ENV",
    "REPLY",
    "cli_provider",
    "home",
    "work",
]  # fixtures, and what others take from here

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

TOKEN = "mcp-token-0123456789abcdef"
# As Fleetwarden starts Claude Code: its own settings only, and only the servers it names.
OWN_SETTINGS = ("--setting-sources", "user", "--strict-mcp-config")
OPENCODE_ENV = {**REAL_OPENCODE_ENV, "OPENCODE_DISABLE_PROJECT_CONFIG": "1"}


@pytest.fixture
async def server() -> AsyncIterator[McpRecorder]:
    async with McpRecorder(token=TOKEN) as recorder:
        yield recorder


def echo(name: str, namespace: str | None = None) -> Turn:
    return Turn(text="", tool=ToolCall(name, {"text": "hello"}, namespace=namespace))


def tool_names(fake: FakeProvider) -> list[str]:
    """The tools the CLI gave the model in its first model request, as the model sees them."""
    body = next(r.body for r in fake.requests if r.api is not None)
    return [t.get("name", "") for t in body.get("tools", [])] if isinstance(body, dict) else []


def answered(fake: FakeProvider) -> bool:
    """Whether the tool's result came back to the model in a later request."""
    return any("echo: hello" in json.dumps(r.body) for r in fake.requests[1:])


def called_echo_with_the_token(server: McpRecorder, fake: FakeProvider) -> None:
    """The server got one call, of echo with the model's arguments and srv's token, and its
    result went back to the model."""
    [call] = server.calls
    assert (call.tool, call.arguments) == ("echo", {"text": "hello"})
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert answered(fake)


def skill(root: Path, name: str, description: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    text = f"---\nname: {name}\ndescription: {description}\n---\n\nSay {description}.\n"
    (folder / "SKILL.md").write_text(text)


def http_server(url: str, headers: dict[str, str]) -> str:
    return json.dumps({"mcpServers": {"srv": {"type": "http", "url": url, "headers": headers}}})


async def test_claude_calls_a_tool_of_the_server_its_mcp_config_names(
    cli_provider: FakeProvider, server: McpRecorder, home: Path, work: Path
) -> None:
    """Claude Code with --strict-mcp-config reads only --mcp-config, sends its literal
    Authorization, and calls mcp__srv__echo once a rule allows it; the workdir's .mcp.json
    is never read."""
    async with McpRecorder(name="workdir") as stray:
        (work / ".mcp.json").write_text(http_server(stray.url, {}))
        cli_provider.add(echo("mcp__srv__echo"))
        env = clean_env(home, {**CLAUDE_ENV, "ANTHROPIC_BASE_URL": cli_provider.base_url})
        env["CLAUDE_CONFIG_DIR"] = str(home / ".claude")
        config = http_server(server.url, {"Authorization": f"Bearer {TOKEN}"})
        argv = [cli("claude"), "-p", "go", "--output-format", "json", *OWN_SETTINGS]
        argv += ["--allowedTools", "mcp__srv__echo", "--mcp-config", config]
        run = await run_cli(argv, work, env)
        check(run, cli_provider, "/v1/messages")
        assert stray.requests == []
    assert "mcp__srv__echo" in tool_names(cli_provider)
    called_echo_with_the_token(server, cli_provider)
    assert server.methods()[:2] == ["initialize", "notifications/initialized"]


async def test_claude_refuses_an_mcp_call_no_rule_allows(
    cli_provider: FakeProvider, server: McpRecorder, home: Path, work: Path
) -> None:
    """In the default mode, headless, an MCP tool nobody allowed is refused, never called."""
    cli_provider.add(echo("mcp__srv__echo"))
    env = clean_env(home, {**CLAUDE_ENV, "ANTHROPIC_BASE_URL": cli_provider.base_url})
    env["CLAUDE_CONFIG_DIR"] = str(home / ".claude")
    config = http_server(server.url, {"Authorization": f"Bearer {TOKEN}"})
    argv = [cli("claude"), "-p", "go", "--output-format", "json", *OWN_SETTINGS]
    run = await run_cli([*argv, "--mcp-config", config], work, env)
    check(run, cli_provider, "/v1/messages")
    denied = json.loads(run.stdout)["permission_denials"]
    assert [d["tool_name"] for d in denied] == ["mcp__srv__echo"]
    assert "tools/list" in server.methods() and server.calls == []


async def read_event(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    """The next JSON line of a stream-json Claude, which must not end first."""
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    assert line, "claude ended before the event expected"
    event: dict[str, Any] = json.loads(line)
    return event


@contextlib.asynccontextmanager
async def live_claude(
    fake: FakeProvider, server: McpRecorder, home: Path, work: Path, *, limit: int = 1 << 16
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Claude Code as Fleetwarden runs a live session (stream-json both ways, its asks on
    stdio, the default mode) with ``server`` as srv, sending its token; killed, its whole
    session, when the block ends."""
    env = clean_env(home, {**CLAUDE_ENV, "ANTHROPIC_BASE_URL": fake.base_url})
    env["CLAUDE_CONFIG_DIR"] = str(home / ".claude")
    config = http_server(server.url, {"Authorization": f"Bearer {TOKEN}"})
    argv = [cli("claude"), "-p", "--input-format", "stream-json", "--output-format"]
    argv += ["stream-json", "--verbose", "--permission-prompt-tool", "stdio", *OWN_SETTINGS]
    argv += ["--permission-mode", "default", "--mcp-config", config]
    async with claude_session(argv, work, env, limit=limit) as proc:
        yield proc


async def test_claude_live_session_asks_for_an_mcp_call_and_runs_it_when_allowed(
    cli_provider: FakeProvider, server: McpRecorder, home: Path, work: Path
) -> None:
    """Headless as Fleetwarden runs it (stream-json, --permission-prompt-tool stdio), an MCP
    call is a can_use_tool request naming mcp__srv__echo and its input; allowed, it runs."""
    cli_provider.add(echo("mcp__srv__echo"))
    async with live_claude(cli_provider, server, home, work) as proc, asyncio.timeout(TIMEOUT):
        assert proc.stdin is not None
        turn = {"type": "user", "message": {"role": "user", "content": "go"}}
        proc.stdin.write(json.dumps(turn).encode() + b"\n")
        event = await read_event(proc)
        while event.get("type") != "control_request":
            event = await read_event(proc)
        ask = event["request"]
        assert (ask["subtype"], ask["tool_name"]) == ("can_use_tool", "mcp__srv__echo")
        assert ask["input"] == {"text": "hello"} and server.calls == []
        allow = {"behavior": "allow", "updatedInput": ask["input"]}
        answer = {"subtype": "success", "request_id": event["request_id"], "response": allow}
        reply = {"type": "control_response", "response": answer}
        proc.stdin.write(json.dumps(reply).encode() + b"\n")
        while event.get("type") != "result":
            event = await read_event(proc)
    assert event["permission_denials"] == [] and event["result"] == REPLY
    [call] = server.calls
    assert call.arguments == {"text": "hello"}
    assert answered(cli_provider)


async def test_claude_reads_skills_from_its_config_dir_not_the_workdir(
    cli_provider: FakeProvider, home: Path, work: Path
) -> None:
    """With --setting-sources user, $CLAUDE_CONFIG_DIR/skills is read and the workdir's
    .claude/skills and .agents/skills are not."""
    config_dir = home / "claude-config"
    skill(config_dir / "skills", "given", "zebra-given-skill")
    skill(work / ".claude" / "skills", "planted", "zebra-planted-skill")
    skill(work / ".agents" / "skills", "shared", "zebra-shared-skill")
    env = clean_env(home, {**CLAUDE_ENV, "ANTHROPIC_BASE_URL": cli_provider.base_url})
    env["CLAUDE_CONFIG_DIR"] = str(config_dir)
    argv = [cli("claude"), "-p", "go", "--output-format", "json", *OWN_SETTINGS]
    run = await run_cli(argv, work, env)
    check(run, cli_provider, "/v1/messages")
    sent = json.dumps(cli_provider.requests[-1].body)
    assert "zebra-given-skill" in sent
    assert "zebra-planted-skill" not in sent and "zebra-shared-skill" not in sent


def codex_env(fake: FakeProvider, home: Path, extra: str, top: str = "") -> dict[str, str]:
    """Codex's environment, its config.toml holding ``top`` first and ``extra`` last."""
    codex_home = home / ".codex"
    codex_home.mkdir(exist_ok=True)
    config = CODEX_CONFIG.format(top=top, base=fake.base_url, extra=extra)
    (codex_home / "config.toml").write_text(config)
    env = {"CODEX_HOME": str(codex_home), "FAKE_PROVIDER_API_KEY": API_KEY}
    return clean_env(home, {**env, "SRV_TOKEN": TOKEN})


def codex_server(url: str) -> str:
    return f'\n[mcp_servers.srv]\nurl = "{url}"\nbearer_token_env_var = "SRV_TOKEN"\n'


async def test_codex_calls_an_mcp_tool_in_the_servers_namespace(
    cli_provider: FakeProvider, server: McpRecorder, home: Path, work: Path
) -> None:
    """Codex's [mcp_servers.srv] over streamable HTTP sends bearer_token_env_var's token,
    gives the model the namespace mcp__srv, and calls echo when the model calls it there
    (unasked under `codex exec` with its own sandbox off, as in Fleetwarden's)."""
    top = 'sandbox_mode = "danger-full-access"\n'
    cli_provider.add(echo("echo", namespace="mcp__srv"))
    argv = [cli("codex"), "exec", "--skip-git-repo-check", "--ephemeral", "--json", "go"]
    run = await run_cli(argv, work, codex_env(cli_provider, home, codex_server(server.url), top))
    check(run, cli_provider, "/v1/responses")
    assert "mcp__srv" in tool_names(cli_provider)
    called_echo_with_the_token(server, cli_provider)


async def test_codex_exec_in_its_own_sandbox_refuses_an_mcp_call(
    cli_provider: FakeProvider, server: McpRecorder, home: Path, work: Path
) -> None:
    """With Codex's own sandbox on, `codex exec` (which never asks) refuses an MCP call as
    needing an approval, and the server sees no call."""
    cli_provider.add(echo("echo", namespace="mcp__srv"))
    argv = [cli("codex"), "exec", "--skip-git-repo-check", "--ephemeral", "--json", "go"]
    run = await run_cli(argv, work, codex_env(cli_provider, home, codex_server(server.url)))
    check(run, cli_provider, "/v1/responses")
    assert "MCP tool call requires approval, but approval policy is never" in run.stdout
    assert "tools/list" in server.methods() and server.calls == []


async def test_codex_reads_the_workdirs_agents_skills_even_untrusted(
    cli_provider: FakeProvider, home: Path, work: Path
) -> None:
    """Codex reads $CODEX_HOME/skills, and the workdir's .agents/skills too although its
    config marks the workdir an untrusted project, as Fleetwarden's does."""
    skill(home / ".codex" / "skills", "given", "zebra-given-skill")
    skill(work / ".agents" / "skills", "planted", "zebra-planted-skill")
    extra = f'\n[projects.{json.dumps(str(work))}]\ntrust_level = "untrusted"\n'
    argv = [cli("codex"), "exec", "--skip-git-repo-check", "--ephemeral", "--json", "go"]
    run = await run_cli(argv, work, codex_env(cli_provider, home, extra))
    check(run, cli_provider, "/v1/responses")
    sent = json.dumps(cli_provider.requests[-1].body)
    assert "zebra-given-skill" in sent and "zebra-planted-skill" in sent


def opencode_config(fake: FakeProvider, server: McpRecorder) -> dict[str, Any]:
    """An inline config on the fake provider with ``server`` as the remote server srv."""
    return {
        **opencode_on(fake.base_url),
        "permission": {"*": "allow"},
        "mcp": {
            "srv": {
                "type": "remote",
                "url": server.url,
                "headers": {"Authorization": "Bearer {env:SRV_TOKEN}"},
            }
        },
    }


def opencode_env(home: Path, config: dict[str, Any], **extra: str) -> dict[str, str]:
    """opencode's environment with ``config`` inline, srv's token in SRV_TOKEN, and
    ``extra``."""
    inline = {"OPENCODE_CONFIG_CONTENT": json.dumps(config), "SRV_TOKEN": TOKEN}
    return clean_env(home, {**OPENCODE_ENV, **inline, **extra})


async def test_opencode_calls_an_mcp_tool_named_server_underscore_tool(
    cli_provider: FakeProvider, server: McpRecorder, home: Path, work: Path
) -> None:
    """opencode's remote server in its inline config sends its headers, with {env:VAR}
    replaced, and the model's srv_echo is the server's echo."""
    config = opencode_config(cli_provider, server)
    cli_provider.add(echo("srv_echo"))
    run = await run_cli([cli("opencode"), "run", "go", "--pure"], work, opencode_env(home, config))
    check(run, cli_provider, "/v1/messages")
    assert "srv_echo" in tool_names(cli_provider)
    called_echo_with_the_token(server, cli_provider)


GATE = """\
import fs from "node:fs";
export const Gate = async () => ({
  "tool.execute.before": async (input, output) => {
    fs.writeFileSync(process.env.GATE_MARK, JSON.stringify({tool: input.tool, args: output.args}));
    throw new Error("refused by the gate");
  },
});
"""


async def test_opencode_plugin_gate_sees_and_stops_an_mcp_call(
    cli_provider: FakeProvider, server: McpRecorder, home: Path, work: Path, tmp_path: Path
) -> None:
    """A plugin's tool.execute.before hook (where Fleetwarden's gate sits) is given an MCP
    call as srv_echo with its arguments, and throwing there keeps it from the server."""
    gate, mark = tmp_path / "gate.mjs", tmp_path / "gate.json"
    gate.write_text(GATE)
    config = {**opencode_config(cli_provider, server), "plugin": [gate.as_uri()]}
    cli_provider.add(echo("srv_echo"))
    env = opencode_env(home, config, GATE_MARK=str(mark))
    run = await run_cli([cli("opencode"), "run", "go", "--format", "json"], work, env)
    check(run, cli_provider, "/v1/messages")
    assert json.loads(mark.read_text()) == {"tool": "srv_echo", "args": {"text": "hello"}}
    assert "refused by the gate" in run.stdout
    assert "tools/list" in server.methods() and server.calls == []
