"""The real agent CLIs, launched with the files, environment and argv Fleetwarden's runtimes
plan for an agent granted an MCP server and given a skill, call the server's tool through
the real MCP door on the heartbeat endpoint: the token-protected server (the SDK's, on
loopback) sees only the credential Fleetwarden holds, the door only the run's token, and
the model sees the skill placed at launch."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fleet.mcp.model import McpGrant
from fleet.model import AgentSpec, LaunchPlan, PermissionMode
from fleet.runs.layout import write_files
from fleet.runtimes import RuntimeContext
from fleet.runtimes.claude import ClaudeRuntime
from fleet.runtimes.codex import CodexRuntime
from fleet.runtimes.command import CommandRuntime
from fleet.runtimes.opencode import OpencodeRuntime
from tests.fakes.provider.server import FakeProvider, ToolCall, Turn
from tests.integration.mcp.cli_rig import AGENT as AGENT
from tests.integration.mcp.cli_rig import SERVER as SERVER
from tests.integration.mcp.cli_rig import claude_session, say_go, tracker_door, until_result
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV, Door, HttpMcp
from tests.integration.runtimes.codex_live import LiveCodex
from tests.integration.runtimes.test_codex_live_session import ended
from tests.integration.runtimes.test_real_clis import API_KEY, TIMEOUT, clean_env, run_cli
from tests.integration.runtimes.test_real_clis import REPLY as REPLY
from tests.integration.runtimes.test_real_clis import cli_provider as cli_provider  # fixtures

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

SKILL = "zebra-review"
SKILL_WORDS = "zebra-striped review checklist"
SCRIPT = """\
import json, os, sys, urllib.request
config = json.load(open(os.path.join(os.environ["HOME"], ".fleetwarden", "mcp.json")))
server = config["mcpServers"][sys.argv[1]]
headers = {**server["headers"], "Content-Type": "application/json", "Accept": "application/json"}
def post(message):
    request = urllib.request.Request(server["url"], json.dumps(message).encode(), headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        if "Mcp-Session-Id" in answer.headers:
            headers["Mcp-Session-Id"] = answer.headers["Mcp-Session-Id"]
        body = answer.read()
        return json.loads(body) if body else None
info = {"name": "script", "version": "1"}
params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": info}
post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
post({"jsonrpc": "2.0", "method": "notifications/initialized"})
call = {"name": "echo", "arguments": {"text": "hello from a script"}}
answer = post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
print(answer["result"]["content"][0]["text"])
"""


@pytest.fixture
async def door(tmp_path: Path, http_mcp: HttpMcp) -> AsyncIterator[Door]:
    async with tracker_door(tmp_path, http_mcp) as opened:
        yield opened


@pytest.fixture
def skill_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "operator-skills" / SKILL
    folder.mkdir(parents=True)
    text = f"---\nname: {SKILL}\ndescription: {SKILL_WORDS}\n---\n\nCheck the stripes.\n"
    (folder / "SKILL.md").write_text(text)
    return folder


def launched(
    runtime: Any, spec: AgentSpec, door: Door, tmp_path: Path, urls: dict[str, str]
) -> tuple[LaunchPlan, RuntimeContext]:
    """The runtime's plan for ``spec`` on the door's endpoint, its files written as the
    keeper writes them."""
    ctx = context(door, tmp_path, urls)
    plan = runtime.plan(spec, ctx)
    write_files(ctx.home, plan.files)
    return plan, ctx


def context(door: Door, tmp_path: Path, urls: dict[str, str]) -> RuntimeContext:
    """An agent's place on the door's endpoint, with its run's URL and token."""
    home, work = tmp_path / "home", tmp_path / "work"
    (home / "tmp").mkdir(parents=True)
    work.mkdir()
    environ = {
        "PATH": clean_env(home, {})["PATH"],
        "ANTHROPIC_API_KEY": API_KEY,
        "OPENAI_API_KEY": API_KEY,
        CREDENTIAL_ENV: f"Bearer {CREDENTIAL}",  # in Fleetwarden's environment, never the agent's
    }
    return RuntimeContext(
        home=home,
        workdir=work,
        environ=environ,
        provider_urls=urls,
        heartbeat_url=door.endpoint.url_for(AGENT),
        heartbeat_token=door.token(AGENT),
    )


def agent(runtime: str, skill_dir: Path, **fields: Any) -> AgentSpec:
    return AgentSpec(
        name=AGENT,  # type: ignore[arg-type]
        runtime=runtime,
        prompt="go",
        secret_env=("ANTHROPIC_API_KEY", "OPENAI_API_KEY"),
        mcp=(McpGrant(SERVER),),
        skills=(skill_dir,),
        **fields,
    )


def agent_never_saw_the_credential(plan: LaunchPlan, home: Path) -> None:
    given = [*plan.argv, *plan.env.values()]
    given += [
        p.read_text() for p in home.rglob("*") if p.is_file() and p.suffix in (".json", ".toml")
    ]
    assert not any(CREDENTIAL in text for text in given)


def server_saw_only_the_credential(mcp: HttpMcp, door: Door) -> None:
    seen = mcp.authorizations()
    assert seen and set(seen) == {f"Bearer {CREDENTIAL}"}


def told_the_skill(fake: FakeProvider) -> bool:
    """Whether the model was given the skill's description in a request."""
    return any(SKILL_WORDS in json.dumps(r.body) for r in fake.requests if r.api is not None)


def audited_call(door: Door, text: str) -> None:
    calls = [a for a in door.audits if a.method == "tools/call"]
    assert [(a.agent, a.server, a.name, a.outcome.value) for a in calls] == [
        (AGENT, SERVER, "echo", "ok")
    ], calls
    assert text in calls[0].result


def called_through_the_door(
    door: Door, mcp: HttpMcp, plan: LaunchPlan, home: Path, text: str
) -> None:
    """The agent's one call, answered ``text``, went through the door with the credential
    the agent never saw."""
    audited_call(door, text)
    server_saw_only_the_credential(mcp, door)
    agent_never_saw_the_credential(plan, home)


async def test_claude_calls_the_tool_with_the_config_its_runtime_wrote(
    cli_provider: FakeProvider, door: Door, http_mcp: HttpMcp, skill_dir: Path, tmp_path: Path
) -> None:
    """Claude Code, started as ClaudeRuntime plans it (its live session, --mcp-config the
    file in its home), calls mcp__my-tracker__echo through the door, and is told the skill
    copied into its config dir."""
    cli_provider.add(Turn(text="", tool=ToolCall(f"mcp__{SERVER}__echo", {"text": "hello"})))
    spec = agent("claude", skill_dir, permissions=PermissionMode.FULL, sandbox="bwrap")
    plan, ctx = launched(
        ClaudeRuntime(), spec, door, tmp_path, {"anthropic": cli_provider.base_url}
    )
    async with claude_session(plan.argv, plan.cwd, plan.env) as proc, asyncio.timeout(TIMEOUT):
        say_go(proc)
        event = await until_result(proc)
    assert event["result"] == REPLY and event["permission_denials"] == [], event
    called_through_the_door(door, http_mcp, plan, ctx.home, "hello")
    assert any(
        "echo" in json.dumps(r.body) and "hello" in json.dumps(r.body)
        for r in cli_provider.requests[1:]
    )
    assert told_the_skill(cli_provider)


@pytest.mark.parametrize("sandbox", ["bwrap", "none"])
async def test_codex_calls_the_tool_with_the_config_its_runtime_wrote(
    cli_provider: FakeProvider,
    door: Door,
    http_mcp: HttpMcp,
    skill_dir: Path,
    tmp_path: Path,
    sandbox: str,
) -> None:
    """Codex, with the config.toml and environment CodexRuntime plans (the token from
    FLEETWARDEN_HEARTBEAT_TOKEN), calls echo in the namespace mcp__my_tracker through the
    door in `codex exec` (which never asks), in Fleetwarden's sandbox or outside it, and
    is told the skill copied into $CODEX_HOME/skills."""
    cli_provider.add(
        Turn(text="", tool=ToolCall("echo", {"text": "hello"}, namespace="mcp__my_tracker"))
    )
    spec = agent("codex", skill_dir, sandbox=sandbox, model="gpt-5-codex")
    runtime = CodexRuntime()
    plan, ctx = launched(runtime, spec, door, tmp_path, {"openai": cli_provider.base_url})
    # The live session's files and environment, in a one-turn `codex exec`.
    run = await run_cli(runtime.headless_argv(spec), plan.cwd, plan.env)
    assert run.returncode == 0, run.stderr[-4000:]
    assert REPLY in run.stdout, run.stdout
    called_through_the_door(door, http_mcp, plan, ctx.home, "hello")
    assert told_the_skill(cli_provider)


async def test_a_command_agent_calls_the_tool_from_its_mcp_json(
    door: Door, http_mcp: HttpMcp, skill_dir: Path, tmp_path: Path
) -> None:
    """A command agent reads $HOME/.fleetwarden/mcp.json and calls tools/call with plain
    HTTP; its skill is in $HOME/.fleetwarden/skills."""
    script = tmp_path / "agent.py"
    script.write_text(SCRIPT)
    spec = agent("command", skill_dir, argv=(sys.executable, str(script), SERVER))
    plan, ctx = launched(CommandRuntime(), spec, door, tmp_path, {})
    run = await run_cli(plan.argv, plan.cwd, plan.env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "hello from a script"
    called_through_the_door(door, http_mcp, plan, ctx.home, "hello from a script")
    assert (ctx.home / ".fleetwarden" / "skills" / SKILL / "SKILL.md").is_file()


async def test_opencode_calls_the_tool_with_the_config_its_runtime_wrote(
    cli_provider: FakeProvider, door: Door, http_mcp: HttpMcp, skill_dir: Path, tmp_path: Path
) -> None:
    """opencode, started as OpencodeRuntime plans it (the mcp block of its inline config),
    calls my-tracker_echo through the door, and is told the skill copied into its config
    dir's skills folder, never the workdir's .agents/skills or .claude/skills."""
    cli_provider.add(Turn(text="", tool=ToolCall(f"{SERVER}_echo", {"text": "hello"})))
    spec = agent(
        "opencode",
        skill_dir,
        permissions=PermissionMode.FULL,
        sandbox="bwrap",
        model="claude-sonnet-4-5",
    )
    plan, ctx = launched(
        OpencodeRuntime(), spec, door, tmp_path, {"anthropic": cli_provider.base_url}
    )
    for planted in (".agents", ".claude"):  # the repository's: never given
        folder = ctx.workdir / planted / "skills" / "planted"
        folder.mkdir(parents=True)
        text = "---\nname: planted\ndescription: quagga-planted-skill\n---\n\nObey.\n"
        (folder / "SKILL.md").write_text(text)
    run = await run_cli(plan.argv, plan.cwd, plan.env)
    assert run.returncode == 0, run.stderr[-4000:]
    assert REPLY in run.stdout, run.stdout
    called_through_the_door(door, http_mcp, plan, ctx.home, "hello")
    assert told_the_skill(cli_provider)
    assert not any("quagga-planted-skill" in json.dumps(r.body) for r in cli_provider.requests)


@pytest.mark.parametrize(
    ("sandbox", "mode"),
    [("bwrap", PermissionMode.FULL), ("none", PermissionMode.FULL), ("none", PermissionMode.ASK)],
)
async def test_codex_live_session_calls_the_tool_with_the_config_its_runtime_wrote(
    cli_provider: FakeProvider,
    door: Door,
    http_mcp: HttpMcp,
    skill_dir: Path,
    tmp_path: Path,
    sandbox: str,
    mode: PermissionMode,
) -> None:
    """Codex's live session (codex app-server, as Fleetwarden runs it), its servers
    required, starts with the door's server and calls its tool without asking itself (the
    door is the one that asks), in Fleetwarden's sandbox (Codex's off) or outside it
    (Codex's own on), in `full` and in `ask`."""
    cli_provider.add(
        Turn(text="", tool=ToolCall("echo", {"text": "hello"}, namespace="mcp__my_tracker"))
    )
    spec = agent("codex", skill_dir, sandbox=sandbox, model="gpt-5.5", permissions=mode)
    ctx = context(door, tmp_path, {"openai": cli_provider.base_url})
    async with LiveCodex(spec, cli_provider, tmp_path, ctx=ctx) as live:
        await live.until(ended)
    audited_call(door, "hello")
    server_saw_only_the_credential(http_mcp, door)
    assert told_the_skill(cli_provider)
