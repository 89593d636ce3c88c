"""The MCP door end to end for the real agent CLIs, through the real ``fleetwarden run``: a
token-protected MCP server (the SDK's, on loopback) in the config's ``mcp:``, an agent of
Claude Code and one of Codex (each against its own strict fake provider, in the default
sandbox) granted it. Each CLI calls the server's tool from the config its launch wrote;
the server sees the credential Fleetwarden holds, never an agent's token; the call is in
the console (the agent's thread line), in the ledger's ``mcp_calls`` with its run, and in
``/metrics``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, ToolCall, Turn
from tests.integration.console_bot import wait_until
from tests.integration.mcp.app_rig import CONSOLE_HEAD, held_env, mcp_calls, running_app, scrape
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV, HttpMcp
from tests.integration.runtimes.test_readable_agents import agent_path
from tests.integration.runtimes.test_real_clis import cli
from tests.postgres_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli, sandbox_need.BWRAP]

KEY = "fake-mcp-e2e-key-0123456789abcdefghijklmn"
METRICS_TOKEN = "metrics-token-for-the-mcp-clis-0123456789"
REPLY = "fleetwarden-ok"
CONFIG = (
    CONSOLE_HEAD
    + """\
providers:
  anthropic: {{upstream: {anthropic}}}
  openai: {{upstream: {openai}}}
accounts:
  claude-team: {{kind: api_key, provider: anthropic, key_env: FW_TEAM_KEY}}
  openai-team: {{kind: api_key, provider: openai, key_env: FW_TEAM_KEY}}
dashboard:
  listen: 127.0.0.1:{dashboard}
  metrics_token_env: FW_TEST_METRICS_TOKEN
mcp:
  my-tracker:
    url: {url}
    headers_env: {{Authorization: {credential_env}}}
agents:
  - name: writer
    runtime: claude
    model: claude-sonnet-4-5
    account: claude-team
    prompt: call the echo tool
    mcp: [my-tracker]
    allow: [mcp__my-tracker__echo]
  - name: checker
    runtime: codex
    model: gpt-5.5
    account: openai-team
    prompt: call the echo tool
    mcp: [my-tracker]
    allow: [mcp__my-tracker__echo]
"""
)


def _calls(root: Path) -> list[tuple[object, ...]]:
    return mcp_calls(root, "agent, server, name, outcome, run_id, result")


def _agents_of(root: Path) -> Callable[[str, bytes], bool]:
    state = str(root / "state")
    return lambda cwd, cmdline: cwd.startswith(state) or state.encode() in cmdline


def test_claude_and_codex_call_a_tool_through_the_apps_door(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """Claude Code (mcp__my-tracker__echo) and Codex (echo in the namespace mcp__my_tracker),
    each spawned by the app in its sandbox, call the token-protected server through the
    door: the server sees only the held credential; each call is in the thread, in
    mcp_calls with the agent's run, and counted in /metrics."""
    cli("claude"), cli("codex")
    accept = Accepted(api_keys=frozenset({KEY}))
    dashboard = free_port()
    with (
        fake_provider_thread(default=Turn(text=REPLY), accept=accept) as anthropic,
        fake_provider_thread(default=Turn(text=REPLY), accept=accept) as openai,
    ):
        anthropic.add(
            Turn(text="", tool=ToolCall("mcp__my-tracker__echo", {"text": "from claude"}))
        )
        openai.add(
            Turn(
                text="", tool=ToolCall("echo", {"text": "from codex"}, namespace="mcp__my_tracker")
            )
        )
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(
            CONFIG.format(
                anthropic=anthropic.base_url,
                openai=openai.base_url,
                dashboard=dashboard,
                url=http_mcp.url,
                credential_env=CREDENTIAL_ENV,
            )
        )
        env = held_env(PATH=agent_path(), FW_TEAM_KEY=KEY, FW_TEST_METRICS_TOKEN=METRICS_TOKEN)
        with running_app(tmp_path, config, env, leftovers=_agents_of(tmp_path)) as bot:
            for agent, said in (("writer", "from claude"), ("checker", "from codex")):
                bot.command(f"spawn {agent}", rf"Agent {agent} started", timeout=120)
                bot.expect(r"🔌 MCP my-tracker · “echo” → ok in [\d.]+s", timeout=120)
                assert wait_until(lambda a=agent: any(c[0] == a for c in _calls(tmp_path)), 30)
                [row] = [c for c in _calls(tmp_path) if c[0] == agent]
                assert row[1:4] == ("my-tracker", "echo", "ok"), row
                assert row[4] is not None and said in str(row[5]), row

            seen = http_mcp.authorizations()
            assert seen and set(seen) == {f"Bearer {CREDENTIAL}"}, seen
            metrics = scrape(dashboard, METRICS_TOKEN)
            assert re.search(
                r'^fleetwarden_mcp_calls_total\{outcome="ok",server="my-tracker"\} 2\.0$',
                metrics,
                re.M,
            ), metrics
            assert bot.close(timeout=60) == 0, bot.stderr[-3000:]
            assert CREDENTIAL not in bot.stdout + bot.stderr
            # Nowhere in the agents' homes (their CLIs' config files), workdirs or logs.
            for path in (tmp_path / "state" / "agents").rglob("*"):
                if path.is_file() and not path.is_symlink():
                    assert CREDENTIAL.encode() not in path.read_bytes(), path
