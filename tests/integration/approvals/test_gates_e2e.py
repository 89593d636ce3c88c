"""The real ``fleetwarden run`` with a real pi or opencode agent, sandboxed, behind the
metering proxy and the fake provider: its shell command is asked in chat through the ask
door, the operator answers at the console, and an ask outlives a restart of
``fleetwarden run``."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, ToolCall, Turn
from tests.integration.console_bot import ConsoleBot, clean_env, processes_where
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.agent_cli,
    sandbox_need.BWRAP,
]

KEY = "fake-gates-e2e-provider-key-0123456789abcdef"
REPLY = "the-agent-went-on-8c1d"
MADE = "made-by-the-agent.txt"
CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
providers:
  anthropic:
    upstream: {upstream}
agents:
  - name: agent-1
    runtime: {runtime}
    secret_env: [ANTHROPIC_API_KEY]
"""
ASKED = r"Approval\W+([a-z2-9]{4})\W.*agent-1.*asks to use.*bash"


def start(tmp_path: Path) -> ConsoleBot:
    path = ":".join(dict.fromkeys([str(bin_dir()), str(node_dir()), "/usr/bin", "/bin"]))
    env = clean_env(ANTHROPIC_API_KEY=KEY, PATH=path)
    return ConsoleBot(tmp_path, "--config", str(tmp_path / "fleetwarden.yaml"), env=env)


def kill_agent(tmp_path: Path) -> None:
    """Agents outlive Fleetwarden by design: end what is left of this test's."""
    work = str(tmp_path / "state" / "agents" / "agent-1" / "work")
    for pid in processes_where(lambda cwd, cmdline: cwd == work):
        with contextlib.suppress(ProcessLookupError):  # it ended since it was found
            os.kill(pid, signal.SIGKILL)


def made(tmp_path: Path) -> Path:
    return tmp_path / "state" / "agents" / "agent-1" / "work" / MADE


def wait_for_file(path: Path, timeout: float = 60.0) -> bool:
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        if path.exists():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("runtime", ["pi", "opencode"])
def test_an_ask_is_answered_at_the_console_after_a_restart(runtime: str, tmp_path: Path) -> None:
    """spawn → the CLI's command is asked (the default ``edits`` mode asks for a shell
    command) and shown with its id; ``fleetwarden run`` stops and starts again while the
    CLI waits; ``approve ID`` at the new one lets the command run, and the CLI finishes."""
    cli(runtime)
    args = {"command": f"echo done > {MADE}", "description": "write the file"}
    if runtime == "pi":
        del args["description"]
    shell = Turn(text="", tool=ToolCall("bash", args))
    accept = Accepted(api_keys=frozenset({KEY}))
    with fake_provider_thread(shell, default=Turn(text=REPLY), accept=accept) as fake:
        config = CONFIG.format(upstream=fake.base_url, runtime=runtime)
        (tmp_path / "fleetwarden.yaml").write_text(config)
        bot = start(tmp_path)
        try:
            bot.command('spawn agent-1 --prompt "make the file"', r"agent-1")
            request_id = bot.expect(ASKED, timeout=60).group(1)
            assert not made(tmp_path).exists()
            assert bot.close() == 0
            bot = start(tmp_path)
            bot.command("pending", rf"{request_id}.*agent-1")
            bot.command(f"approve {request_id}", rf"{request_id} allowed once")
            assert wait_for_file(made(tmp_path)), bot.stdout
            bot.command("logs agent-1", REPLY, timeout=60)
            assert bot.close() == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
            kill_agent(tmp_path)
    assert made(tmp_path).read_text().strip() == "done"
    assert KEY not in bot.stdout + bot.stderr
