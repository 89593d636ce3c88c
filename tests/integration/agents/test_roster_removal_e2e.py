"""Removed means removed, through the real ``fleetwarden run``: two `restart: always` agents
of the `command` runtime (a small script in each one's workdir, sandboxed as agents are by
default), one of which asks a model through the metering proxy and the fake provider. A
`roster reload` drops it; it runs on, `ps` marks it not in roster; once both end by
themselves the watchdog restarts the one still in the roster, round after round, and never
the removed one. `forget` takes it off `ps`, while `usage` and the ledger keep its run and
what it used."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, Turn, Usage
from tests.integration.console_bot import (
    ConsoleBot,
    clean_env,
    pid_alive,
    processes_where,
    wait_until,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]
PROVIDER_KEY = "fake-roster-removal-provider-key"
SCRIPT = "sleeper.py"
SLEEPER = """\
import json, os, sys, urllib.request

base = os.environ.get("ANTHROPIC_BASE_URL", "")
if os.environ.get("SLEEPER_ASK") and base:
    body = {"model": "claude-haiku-4-5", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(
        base.rstrip("/") + "/v1/messages", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "anthropic-version": "2023-06-01",
                 "x-api-key": "none"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            print("sleeper: asked, status", response.status, flush=True)
    except Exception as exc:
        print("sleeper: ask failed:", exc, flush=True)
print("sleeper: up", flush=True)
for line in sys.stdin:
    if line.strip() == "exit":
        print("sleeper: bye", flush=True)
        break
"""
HEAD = """\
state_dir: ./state
connectors:
  console: {{}}
providers:
  anthropic:
    upstream: {upstream}
defaults:
  watchdog_interval_seconds: 5
  stop_grace_seconds: 1
  sandbox: {sandbox}
agents:
"""
ENTRY = """\
  - name: {name}
    runtime: command
    argv: [{python}, -I, {script}]
    workdir: ./{name}-work
    restart: {{mode: always, max_restarts: 5, backoff_initial: 0.1, backoff_max: 1}}
    secret_env: [ANTHROPIC_API_KEY]
    env: {{SLEEPER_ASK: "{ask}"}}
"""


def roster(upstream: str, *names: str) -> str:
    sandbox = "bwrap" if shutil.which("bwrap") else "none"
    entries = "".join(
        ENTRY.format(name=n, python=sys.executable, script=SCRIPT, ask="1" if n == "gone" else "")
        for n in names
    )
    return HEAD.format(upstream=upstream, sandbox=sandbox) + entries


def sleepers_under(root: Path) -> list[int]:
    """Pids of sleeper scripts working under ``root`` (not the sandbox around them)."""
    return processes_where(
        lambda cwd, cmdline: cwd.startswith(str(root)) and SCRIPT.encode() in cmdline
    )


def pid_in_ps(bot: ConsoleBot, name: str, state: str) -> int:
    """The pid `ps` shows for ``name`` in ``state``."""
    return int(bot.command("ps", rf"{name}\s+command\s+{re.escape(state)}\s+(\d+)\s").group(1))


def test_a_removed_agent_is_not_restarted_and_forget_keeps_its_usage(tmp_path: Path) -> None:
    """Reload drops `gone`: it runs on marked not in roster; after both agents exit, `keep`
    is restarted twice and `gone` never; `forget gone` takes it off `ps`, `usage` still
    counts it and its one run stays in the ledger."""
    for name in ("keep", "gone"):
        (tmp_path / f"{name}-work").mkdir()
        # In its workdir: the sandbox's /tmp is its own, so a script under the host's /tmp
        # would not be where the agent can read it.
        (tmp_path / f"{name}-work" / SCRIPT).write_text(SLEEPER)
    config = tmp_path / "fleetwarden.yaml"
    env = clean_env(PYTHONPATH=str(ROOT), ANTHROPIC_API_KEY=PROVIDER_KEY)
    turn = Turn(text="hi", usage=Usage(input=100, output=20))
    accept = Accepted(api_keys=frozenset({PROVIDER_KEY}))
    with fake_provider_thread(default=turn, accept=accept) as fake:
        config.write_text(roster(fake.base_url, "keep", "gone"))
        bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
        try:
            bot.command("spawn keep", r"Agent keep started")
            bot.command("spawn gone", r"Agent gone started")
            assert wait_until(lambda: _usage_shows(bot, "gone"), timeout=30), bot.stdout

            config.write_text(roster(fake.base_url, "keep"))
            bot.command(
                "roster reload",
                r"removed: gone\. Removed but still running, until stopped \(never restarted\): "
                r"gone\.",
            )
            gone_pid = pid_in_ps(bot, "gone", "running, not in roster")
            assert pid_alive(gone_pid)

            bot.command("send gone exit", r"Sent to gone")
            keep_pid = pid_in_ps(bot, "keep", "running")
            for round_ in (1, 2):  # each round is at least two sweeps: schedule, then restart
                bot.command("send keep exit", r"Sent to keep")
                bot.expect(rf"Agent keep restarted by the watchdog: restart {round_} of 5", 40)
                new_pid = pid_in_ps(bot, "keep", "running")
                assert new_pid != keep_pid
                keep_pid = new_pid
            assert not pid_alive(gone_pid)
            bot.command("ps", r"gone\s+command\s+exited \(0\), not in roster\s+–")
            assert "Agent gone restarted" not in bot.stdout

            bot.command("forget gone", r"Forgot gone: `?ps`? no longer lists it")
            bot.command("ps", r"keep\s+command\s+running")
            assert not re.search(r"^\|?\s*gone\s", bot.output_since_command, re.MULTILINE)
            bot.command("usage gone", r"gone\s+claude-haiku-4-5")
            bot.command("stop keep", r"Stopped keep")
            assert bot.close() == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
            for pid in sleepers_under(tmp_path):
                os.kill(pid, signal.SIGKILL)  # agents outlive Fleetwarden by design

    ledger = sqlite3.connect(tmp_path / "state" / "ledger.db")
    try:
        runs = ledger.execute("SELECT count(*) FROM runs WHERE agent = 'gone'").fetchone()[0]
        marks = ledger.execute(
            "SELECT origin, removed_at IS NOT NULL, forgotten_at IS NOT NULL FROM agents"
            " WHERE name = 'gone'"
        ).fetchone()
        used = ledger.execute("SELECT count(*) FROM usage WHERE agent = 'gone'").fetchone()[0]
    finally:
        ledger.close()
    assert runs == 1
    assert marks == ("roster", 1, 1)
    assert used == 1


def _usage_shows(bot: ConsoleBot, name: str) -> bool:
    bot.command(f"usage {name}", rf"{name}|No model requests")
    return "claude-haiku-4-5" in bot.output_since_command
