"""Budget cutoffs end to end: the real ``fleetwarden run``, stub agents asking a model
through the metering proxy, the fake provider. When a budget runs out — found by a request,
between pacing ticks — its cutoff runs with no agent in the loop: ``freeze`` pauses the
agent's processes (``ps`` says so and why, the watchdog leaves it be) until ``resume``;
``stop`` stops it, recorded. Each change is posted once."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import FAKE_KEY, Turn, Usage
from tests.integration.console_bot import ConsoleBot, clean_env, stub_processes_in, wait_until
from tests.integration.paused import pauses

pytestmark = pytest.mark.integration

CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
providers:
  anthropic:
    upstream: {upstream}
pacing:
  tick_seconds: 600
defaults:
  heartbeat_timeout_seconds: 2.0
  watchdog_interval_seconds: 5.0
budgets:
  - scope: agent:asker
    limit_tokens: 50000
    window: 10h
    cutoff: freeze
  - scope: agent:stopper
    limit_tokens: 50000
    window: 10h
    cutoff: stop
agents:
  - name: asker
    runtime: stub
    secret_env: [ANTHROPIC_API_KEY]
    restart: always
  - name: stopper
    runtime: stub
    secret_env: [ANTHROPIC_API_KEY]
"""
USAGE = Usage(input=20_000, output=10_000)  # 30 000 tokens an answer: two cross 50 000


def ledger_rows(state: Path, sql: str) -> list[tuple[object, ...]]:
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        return ledger.execute(sql).fetchall()
    finally:
        ledger.close()


def test_freeze_pauses_until_resume_and_stop_stops(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with fake_provider_thread(default=Turn(text="paced", usage=USAGE)) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(CONFIG.format(upstream=fake.base_url))
        bot = ConsoleBot(
            tmp_path, "--config", str(config), env=clean_env(ANTHROPIC_API_KEY=FAKE_KEY)
        )
        work = state / "agents" / "asker" / "work"
        try:
            # freeze: the second answer crosses the limit; the tick is 10 minutes away.
            bot.command('spawn asker --prompt "ask 2"', r"Agent asker started")
            bot.expect(r"agent:asker reached its limit .*freezing its agents \(asker\)", 20)
            pids = stub_processes_in(work)
            assert pids and wait_until(lambda: pauses(pids) == {True}, timeout=10)
            bot.command("ps", r"asker")
            assert "frozen: agent:asker reached its limit" in bot.output_since_command
            assert ledger_rows(state, "SELECT agent, budget FROM freezes") == [
                ("asker", "agent:asker")
            ]
            # Frozen means silent: the watchdog (5 s sweep, 2 s heartbeat timeout) must
            # not take it for stalled and restart it.
            runs = "SELECT count(*) FROM runs WHERE agent='asker'"
            assert not wait_until(lambda: ledger_rows(state, runs) != [(1,)], timeout=7)
            assert pauses(pids) == {True}
            # resume: the processes continue; the budget still refuses its requests.
            bot.command("resume asker", r"Resumed \*?\*?asker")
            assert wait_until(lambda: True not in pauses(pids), timeout=10)
            sent = len(fake.requests)
            bot.command("send asker ask 1", r"ask 1/1 failed: HTTP Error 429", timeout=30)
            assert len(fake.requests) == sent
            bot.command("resume asker", r"asker is not frozen")

            # stop: the agent is stopped gracefully, and the ledger says by what.
            bot.command('spawn stopper --prompt "ask 2"', r"stopper")
            bot.expect(r"agent:stopper reached its limit .*stopping stopper", 20)
            assert wait_until(
                lambda: (
                    ledger_rows(state, "SELECT state FROM agents WHERE name='stopper'")
                    == [("stopped",)]
                ),
                timeout=20,
            )
            why = ledger_rows(state, "SELECT state_reason FROM agents WHERE name='stopper'")
            assert "the cutoff of agent:stopper" in str(why[0][0])
            limit_notices = bot.stdout.count("reached its limit (50,000 tokens)")
            assert limit_notices == 2, bot.output
            bot.command("stop asker", r"Stopped asker")
            assert bot.close() == 0
        finally:
            for name in ("asker", "stopper"):
                for pid in stub_processes_in(state / "agents" / name / "work"):
                    os.kill(pid, signal.SIGKILL)
            if bot.proc.poll() is None:
                bot.kill()
