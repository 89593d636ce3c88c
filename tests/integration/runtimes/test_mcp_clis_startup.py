"""What the real agent CLIs do with an MCP server slow to start, as docs/mcp-clis.md says:
Claude Code and Codex start the turn without it unless told to wait, so a door that answers
``initialize`` late leaves the agent without its tools. The recording server
(:mod:`tests.fakes.mcp.recorder`) holds ``initialize`` for a while or until it stops."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from tests.fakes.mcp.recorder import McpRecorder
from tests.fakes.provider.server import FakeProvider
from tests.integration.runtimes.test_mcp_clis import (
    OWN_SETTINGS,
    codex_env,
    codex_server,
    echo,
    http_server,
)
from tests.integration.runtimes.test_real_clis import (
    CLAUDE_ENV,
    check,
    clean_env,
    cli,
    cli_provider,
    home,
    run_cli,
    work,
)

__all__ = ["cli_provider", "home", "work"]  # fixtures

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

SLOW = 3.0  # seconds a slow server takes to answer initialize
CODEX = ("exec", "--skip-git-repo-check", "--ephemeral", "--json", "go")
FULL_ACCESS = 'sandbox_mode = "danger-full-access"\n'


async def claude_run(
    fake: FakeProvider, server: McpRecorder, home: Path, work: Path, extra: dict[str, str]
) -> tuple[list[dict[str, object]], str]:
    """A headless Claude Code whose model calls mcp__srv__echo: the servers as its init
    event gives them, and everything the model was sent."""
    fake.add(echo("mcp__srv__echo"))
    env = clean_env(home, {**CLAUDE_ENV, "ANTHROPIC_BASE_URL": fake.base_url, **extra})
    env["CLAUDE_CONFIG_DIR"] = str(home / ".claude")
    argv = [cli("claude"), "-p", "go", "--output-format", "stream-json", "--verbose"]
    argv += [*OWN_SETTINGS, "--allowedTools", "mcp__srv", "--mcp-config"]
    run = await run_cli([*argv, http_server(server.url, {})], work, env)
    check(run, fake, "/v1/messages")
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    [init] = [e for e in events if e.get("subtype") == "init"]
    sent = json.dumps([r.body for r in fake.requests])
    return init["mcp_servers"], sent


async def test_claude_starts_without_a_server_that_has_not_answered(
    cli_provider: FakeProvider, home: Path, work: Path
) -> None:
    """By default Claude Code does not wait: the server is pending, and a call to its tool
    is told the server is still connecting."""
    async with McpRecorder(stall=math.inf) as server:
        servers, sent = await claude_run(cli_provider, server, home, work, {})
    assert servers == [{"name": "srv", "status": "pending"}]
    assert "The MCP server 'srv' is still connecting" in sent
    assert server.calls == []


async def test_claude_waits_for_a_slow_server_when_told(
    cli_provider: FakeProvider, home: Path, work: Path
) -> None:
    """With MCP_CONNECTION_NONBLOCKING=0 Claude Code waits for a server slow to start, and
    the model's call reaches it."""
    async with McpRecorder(stall=SLOW) as server:
        extra = {"MCP_CONNECTION_NONBLOCKING": "0"}
        servers, _ = await claude_run(cli_provider, server, home, work, extra)
    assert servers == [{"name": "srv", "status": "connected"}]
    assert [c.arguments for c in server.calls] == [{"text": "hello"}]


async def test_codex_starts_without_a_server_that_has_not_answered(
    cli_provider: FakeProvider, home: Path, work: Path
) -> None:
    """Codex starts the turn without a server that has not answered: the model is given no
    mcp__srv namespace, and a call there is unsupported."""
    cli_provider.add(echo("echo", namespace="mcp__srv"))
    async with McpRecorder(stall=math.inf) as server:
        env = codex_env(cli_provider, home, codex_server(server.url), FULL_ACCESS)
        run = await run_cli([cli("codex"), *CODEX], work, env)
    check(run, cli_provider, "/v1/responses")
    assert "mcp__srv" not in json.dumps(cli_provider.requests[0].body.get("tools"))
    assert "unsupported call" in run.stderr and server.calls == []


async def test_codex_waits_for_a_required_server(
    cli_provider: FakeProvider, home: Path, work: Path
) -> None:
    """``required = true`` makes Codex wait for a server slow to start; its call then runs."""
    cli_provider.add(echo("echo", namespace="mcp__srv"))
    async with McpRecorder(stall=SLOW) as server:
        extra = codex_server(server.url) + "required = true\n"
        run = await run_cli(
            [cli("codex"), *CODEX], work, codex_env(cli_provider, home, extra, FULL_ACCESS)
        )
    check(run, cli_provider, "/v1/responses")
    assert [c.arguments for c in server.calls] == [{"text": "hello"}]


async def test_codex_ends_the_run_when_a_required_server_never_answers(
    cli_provider: FakeProvider, home: Path, work: Path
) -> None:
    """A required server that does not answer within startup_timeout_sec ends the run,
    exit 1, saying which server timed out and after about how long."""
    async with McpRecorder(stall=math.inf) as server:
        extra = codex_server(server.url) + "required = true\nstartup_timeout_sec = 2\n"
        run = await run_cli([cli("codex"), *CODEX], work, codex_env(cli_provider, home, extra))
    assert run.returncode == 1, run.stderr
    assert "required MCP servers failed to initialize: srv" in run.stderr
    # Codex says the time it waited as it measured it: `2s`, or `1.999999626s`.
    waited = re.search(r"timed out handshaking with MCP server after (\d+(?:\.\d+)?)s", run.stderr)
    assert waited is not None and 1.9 <= float(waited.group(1)) <= 2.5, run.stderr
    assert cli_provider.requests == []
