"""Rules that hold for a whole command line, through the real ``fleetwarden run`` with real
agent CLIs, sandboxed, against the fake provider: an agent allowed ``Bash(git *)`` that runs
``git --version; echo pwned > PWNED`` is asked in chat and the file is written only once the
operator approves (never on a deny); a Codex agent in ``edits`` running
``rg --pre sh zzz payload.sh`` (a "search" that runs ``sh payload.sh``) is asked too."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, ToolCall, Turn
from tests.integration.console_bot import ConsoleBot, clean_env, processes_where
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.agent_cli,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (bwrap)"),
]

KEY = "fake-compound-rules-provider-key-0123456789"
REPLY = "the-agent-went-on-5e2a"
COMPOUND = "git --version; echo pwned > PWNED"
CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
providers:
  {provider}:
    upstream: {upstream}
agents:
  - name: agent-1
    runtime: {runtime}
    model: {model}
    secret_env: [{secret}]
    workdir: {workdir}
{extra}"""
ASKED = r"Approval\W+([a-z2-9]{{4}})\W.*agent-1.*asks to use.*{tool}"
# Each runtime's provider, key, model (one the fake serves) and shell tool.
RUNTIMES = {
    "claude": ("anthropic", "ANTHROPIC_API_KEY", "claude-sonnet-4-5", "Bash", "command"),
    "pi": ("anthropic", "ANTHROPIC_API_KEY", "claude-sonnet-4-5", "bash", "command"),
    "opencode": ("anthropic", "ANTHROPIC_API_KEY", "claude-sonnet-4-5", "bash", "command"),
    "codex": ("openai", "OPENAI_API_KEY", "gpt-5-codex", "exec_command", "cmd"),
}


def start(tmp_path: Path, runtime: str) -> ConsoleBot:
    path = ":".join(dict.fromkeys([str(bin_dir()), str(node_dir()), "/usr/bin", "/bin"]))
    env = clean_env(PATH=path, **{RUNTIMES[runtime][1]: KEY})
    return ConsoleBot(tmp_path, "--config", str(tmp_path / "fleetwarden.yaml"), env=env)


def configure(tmp_path: Path, runtime: str, upstream: str, extra: str) -> Path:
    provider, secret, model, _, _ = RUNTIMES[runtime]
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    text = CONFIG.format(
        provider=provider,
        upstream=upstream,
        runtime=runtime,
        model=model,
        secret=secret,
        workdir=work,
        extra=extra,
    )
    (tmp_path / "fleetwarden.yaml").write_text(text)
    return work


def shell_turn(runtime: str, line: str) -> Turn:
    _, _, _, tool, field = RUNTIMES[runtime]
    args = {field: line}
    if runtime in ("claude", "opencode"):
        args["description"] = "look around"
    return Turn(text="", tool=ToolCall(tool, args))


def kill_agent(work: Path) -> None:
    """Agents outlive Fleetwarden by design: end what is left of this test's."""
    for pid in processes_where(lambda cwd, cmdline: cwd == str(work)):
        with contextlib.suppress(ProcessLookupError):  # it ended since it was found
            os.kill(pid, signal.SIGKILL)


def wait_for(found: object, timeout: float = 60.0) -> bool:
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        if callable(found) and found():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    ("runtime", "answer"), [("claude", "approve"), ("pi", "deny"), ("opencode", "approve")]
)
def test_an_allow_rule_does_not_pass_a_compound_command(
    runtime: str, answer: str, tmp_path: Path
) -> None:
    """``permissions: ask`` and ``allow: [Bash(git *)]``; the agent runs ``git --version;
    echo pwned > PWNED``: it is asked in chat with nothing written; approved, the file
    appears; denied, it never does and the agent goes on."""
    cli(runtime)
    accept = Accepted(api_keys=frozenset({KEY}))
    turns = (shell_turn(runtime, COMPOUND), Turn(text=REPLY))
    with fake_provider_thread(*turns, default=Turn(text=REPLY), accept=accept) as fake:
        # ``ask``: in ``edits`` Claude Code itself writes a file inside the workdir unasked.
        rules = "    permissions: ask\n    allow: ['Bash(git *)']\n"
        work = configure(tmp_path, runtime, fake.base_url, rules)
        pwned = work / "PWNED"
        bot = start(tmp_path, runtime)
        try:
            bot.command('spawn agent-1 --prompt "look around"', r"agent-1")
            tool = RUNTIMES[runtime][3]
            request_id = bot.expect(ASKED.format(tool=tool), timeout=90).group(1)
            assert not pwned.exists()
            bot.command("pending", rf"{request_id}.*agent-1.*{tool}.*git --version")
            if answer == "approve":
                bot.command(f"approve {request_id}", rf"{request_id} allowed once")
                assert wait_for(pwned.exists), bot.stdout
            else:
                bot.command(f"deny {request_id} not that", rf"{request_id} denied")
                bot.command("logs agent-1", REPLY, timeout=90)
                assert not pwned.exists()
            assert "matches the rule" not in bot.stdout
            assert bot.close() == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
            kill_agent(work)


def test_codex_edits_asks_for_a_search_that_runs_a_program(tmp_path: Path) -> None:
    """Codex in ``edits`` runs ``rg --pre sh zzz payload.sh`` (Codex calls it a search):
    the operator is asked, and on a deny ``payload.sh`` never runs."""
    cli("codex")
    accept = Accepted(api_keys=frozenset({KEY}))
    turns = (shell_turn("codex", "rg --pre sh zzz payload.sh"), Turn(text=REPLY))
    with fake_provider_thread(*turns, default=Turn(text=REPLY), accept=accept) as fake:
        work = configure(tmp_path, "codex", fake.base_url, "    permissions: edits\n")
        (work / "payload.sh").write_text("echo pwned > PWNED\n")
        bot = start(tmp_path, "codex")
        try:
            bot.command('spawn agent-1 --prompt "search"', r"agent-1")
            asked = ASKED.format(tool="commandExecution")
            request_id = bot.expect(asked, timeout=90).group(1)
            bot.command("pending", rf"{request_id}.*agent-1.*rg --pre sh zzz payload\.sh")
            assert not (work / "PWNED").exists()
            bot.command(f"deny {request_id} no preprocessors", rf"{request_id} denied")
            bot.command("logs agent-1", REPLY, timeout=90)
            assert not (work / "PWNED").exists()
            assert bot.close() == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
            kill_agent(work)
