"""Run caps that hold, end to end: the real ``fleetwarden run`` with its console, agents
asking a model through the real metering proxy, and the fake provider. Thirty parallel
requests under a run cap are billed at most the cap and one request more; a cap given at
spawn holds across the watchdog's restart of the agent, counting on from what the run
before spent, and across a restart of Fleetwarden after it."""

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
from tests.integration.console_bot import ConsoleBot, clean_env, stub_processes_in, wait_until

pytestmark = pytest.mark.integration

KEY = "fake-run-caps-key"
FLOOD_AGENT = Path(__file__).parents[2] / "fakes" / "agents" / "flood_agent.py"
CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
  watchdog_interval_seconds: 5
providers:
  anthropic:
    upstream: {upstream}
agents:
  - name: flood
    runtime: command
    argv: [{python}, -I, flood_agent.py]
    workdir: ./flood-work
    secret_env: [ANTHROPIC_API_KEY]
  - name: crashy
    runtime: stub
    model: claude-sonnet-4-5
    secret_env: [ANTHROPIC_API_KEY]
    restart: {{mode: on-failure, max_restarts: 3, backoff_initial: 0.1, backoff_max: 1}}
"""
# What one flood request is billed: 5,005 tokens, within what its body allows (4,000
# bytes of message, max_tokens 1,005), as a real provider's bill is.
FLOOD_USAGE = Usage(input=4_000, output=1_005)
FLOOD_CAP = 20_000
# The stub's requests: a short question, max_tokens 64; 1,060 tokens each.
STUB_USAGE = Usage(input=1_000, output=60)
TOLD = "run capped at"
RUNNING = r"crashy\s+stub / \S+\s+running\s+"


def ok_tokens(state: Path, agent: str) -> tuple[int, int]:
    """How many of ``agent``'s requests were served, and the tokens they were billed."""
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        sql = (
            "SELECT COUNT(*), COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens"
            " + cache_write_tokens), 0) FROM usage WHERE agent = ? AND outcome = 'ok'"
        )
        count, tokens = ledger.execute(sql, (agent,)).fetchone()
        return int(count), int(tokens)
    finally:
        ledger.close()


def kill_agents(tmp_path: Path) -> None:
    for work in (tmp_path / "flood-work", tmp_path / "state" / "agents" / "crashy" / "work"):
        for pid in stub_processes_in(work):
            os.kill(pid, signal.SIGKILL)


def write_config(tmp_path: Path, upstream: str) -> Path:
    (tmp_path / "flood-work").mkdir()
    shutil.copy(FLOOD_AGENT, tmp_path / "flood-work" / "flood_agent.py")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(upstream=upstream, python=sys.executable))
    return config


def test_thirty_parallel_requests_under_a_run_cap_are_billed_the_cap_and_one_more(
    tmp_path: Path,
) -> None:
    """30 requests at once under a 20,000-token cap, 5,005 tokens each: a few go at a time
    (each reserves its worst case), the rest wait or are refused, and the ledger bills at
    most the cap plus one request — never the 150,150 tokens of all thirty."""
    turn = Turn(text="spent", usage=FLOOD_USAGE, delay_between_events=0.02)
    accept = Accepted(api_keys=frozenset({KEY}))
    with fake_provider_thread(default=turn, accept=accept) as fake:
        config = write_config(tmp_path, fake.base_url)
        bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(ANTHROPIC_API_KEY=KEY))
        try:
            bot.command(f"spawn flood --max-tokens {FLOOD_CAP}", r"capped at 20,000 tokens")
            bot.expect(r"flood agent: ready")
            bot.send("send flood flood 30 4000 1005")
            done = bot.expect(r"flood done: 200=(\d+) 400=(\d+) other=(\d+)", timeout=90)
            answered, refused, other = (int(group) for group in done.groups())
            state = tmp_path / "state"
            assert wait_until(lambda: ok_tokens(state, "flood")[0] == answered, timeout=10)
            served, billed = ok_tokens(state, "flood")
            bot.expect(f"{TOLD} 20,000 tokens: refused")
            bot.command("stop flood", r"Stopped flood")
            assert bot.close() == 0
        finally:
            kill_agents(tmp_path)
            if bot.proc.poll() is None:
                bot.kill()
    one_request = FLOOD_USAGE.input + FLOOD_USAGE.output
    assert billed >= FLOOD_CAP, "the flood never reached the cap: it proves nothing"
    assert billed <= FLOOD_CAP + one_request, (served, billed)
    assert (answered + refused, other) == (30, 0)
    assert len(fake.requests) == served == answered
    assert bot.stdout.count(f"{TOLD} 20,000 tokens: refused") == 1


def test_a_spawn_cap_holds_across_the_watchdog_s_restart_and_fleetwarden_s(
    tmp_path: Path,
) -> None:
    """`spawn crashy --max-tokens 3000` (its roster entry has no cap), 1,060 tokens a
    request: two served, the agent crashes and the watchdog restarts it; the new run counts
    on from 2,120 — one more served, then refused — and told once; a restarted
    Fleetwarden reattaches it still capped."""
    accept = Accepted(api_keys=frozenset({KEY}))
    with fake_provider_thread(default=Turn(text="spent", usage=STUB_USAGE), accept=accept) as fake:
        config = write_config(tmp_path, fake.base_url)
        env = clean_env(ANTHROPIC_API_KEY=KEY)
        bots = [ConsoleBot(tmp_path, "--config", str(config), env=env)]
        try:
            first = bots[0]
            first.command("spawn crashy --max-tokens 3000", r"capped at 3,000 tokens")
            first.command("send crashy ask 2", r"answer 2/2: spent", timeout=30)
            pid = first.command("ps", rf"{RUNNING}(\d+)").group(1)
            first.send("send crashy fail 1")
            first.expect(r"Agent crashy restarted by the watchdog", timeout=60)
            assert wait_until(
                lambda: re.search(rf"{RUNNING}(?!{pid}\b)\d+", ps(first)),
                timeout=20,
            )
            first.command("send crashy ask 3", r"ask 3/3 failed: HTTP Error 400", timeout=30)
            assert "answer 1/3: spent" in first.output_since_command
            assert len(fake.requests) == 3  # 3,180 tokens: one request past the cap, no more
            first.expect(f"{TOLD} 3,000 tokens: refused")
            assert first.close() == 0  # the agent runs on
            bots.append(ConsoleBot(tmp_path, "--config", str(config), env=env))
            second = bots[1]
            second.command("ps", r"crashy\s+stub")
            second.command("send crashy ask 1", r"ask 1/1 failed: HTTP Error 400", timeout=30)
            assert len(fake.requests) == 3
            second.command("stop crashy", r"Stopped crashy")
            assert second.close() == 0
        finally:
            kill_agents(tmp_path)
            for bot in bots:
                if bot.proc.poll() is None:
                    bot.kill()
    assert bots[0].stdout.count(f"{TOLD} 3,000 tokens: refused") == 1


def ps(bot: ConsoleBot) -> str:
    bot.command("ps", r"crashy")
    return bot.output_since_command
