"""Budgets end to end: the real ``fleetwarden run``, a stub agent asking a model through
the metering proxy, the fake provider, and the pacing ladder at work. An agent over pace
gets its model rewritten (the fake receives the cheaper model), then its requests are
held — longer than the proxy may hold one, so refused with ``retry-after`` — an admin's
burst lets it through (audited), and at the hard limit it is refused until the reset."""

from __future__ import annotations

import os
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import FAKE_KEY, Turn, Usage
from tests.integration.console_bot import ConsoleBot, clean_env, stub_processes_in, wait_until

pytestmark = pytest.mark.integration

STRONG, CHEAP = "claude-sonnet-4-5", "claude-haiku-4-5"
CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
metering:
  max_hold_seconds: 2
providers:
  anthropic:
    upstream: {upstream}
pacing:
  tick_seconds: 1
budgets:
  - scope: agent:asker
    limit_tokens: 1000000
    window: 10h
    reset_at: {reset_at}
    ladder:
      stub: [{strong}, {cheap}]
agents:
  - name: asker
    runtime: stub
    model: {strong}
    secret_env: [ANTHROPIC_API_KEY]
"""
# 30 000 tokens a request against an allowance of 100 000 an hour: far over pace.
USAGE = Usage(input=20_000, output=10_000)


def ledger_rows(state: Path, sql: str) -> list[tuple[object, ...]]:
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        return ledger.execute(sql).fetchall()
    finally:
        ledger.close()


def test_over_pace_downgrades_then_queues_then_refuses_and_a_burst_lets_through(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    reset_at = (datetime.now(UTC) + timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with fake_provider_thread(default=Turn(text="paced", usage=USAGE)) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(
            CONFIG.format(upstream=fake.base_url, reset_at=reset_at, strong=STRONG, cheap=CHEAP)
        )
        bot = ConsoleBot(
            tmp_path, "--config", str(config), env=clean_env(ANTHROPIC_API_KEY=FAKE_KEY)
        )
        try:
            # 1. The first request goes out as asked, and puts the agent far over pace.
            bot.command('spawn asker --prompt "ask 1"', r"asker")
            assert wait_until(lambda: len(fake.requests) == 1)
            assert fake.requests[0].model == STRONG

            # 2. The next tick downgrades it, once, in the room: the fake gets the cheaper model.
            bot.expect(rf"downgrad\w+ .*{STRONG}.*{CHEAP}", timeout=15)
            bot.command("send asker ask 1", r"answer 1/1: paced")
            assert fake.requests[-1].model == CHEAP

            # 3. At the ladder's floor and still over pace: queued. A request is held longer
            #    than the proxy may hold one (2 s), so it is refused with retry-after.
            bot.expect(r"holding requests until", timeout=15)
            bot.command("ps", r"asker")
            assert "queued until" in bot.output_since_command
            sent = len(fake.requests)
            bot.command("send asker ask 1", r"ask 1/1 failed: HTTP Error 429", timeout=30)
            assert len(fake.requests) == sent  # nothing reached the provider

            # 4. While queued, a new launch is deferred to when the queue should clear.
            bot.command("stop asker", r"Stopped asker")
            bot.command('spawn asker --prompt "ask 1"', r"Not started now: .* tried again at")

            # 5. An admin's burst lets an urgent launch through, and its requests as asked
            #    (no downgrade); the grant is audited.
            bot.command(
                'budget allow-burst agent:asker --until 1h --reason "release day"', r"(?i)burst"
            )
            sent = len(fake.requests)
            bot.command('spawn asker --urgent --prompt "ask 1"', r"asker")
            assert wait_until(lambda: len(fake.requests) > sent, timeout=30)
            assert fake.requests[-1].model == STRONG

            # 6. The hard limit: lowered below what was used, every request is refused
            #    with retry-after = the window's reset, burst or not.
            bot.command("budget set agent:asker 50k --window 10h", r"agent:asker")
            sent = len(fake.requests)
            bot.command("send asker ask 1", r"ask 1/1 failed: HTTP Error 429", timeout=30)
            assert len(fake.requests) == sent
            bot.command("stop asker", r"Stopped asker")
            assert bot.close() == 0
        finally:
            for pid in stub_processes_in(state / "agents" / "asker" / "work"):
                os.kill(pid, signal.SIGKILL)
            if bot.proc.poll() is None:
                bot.kill()

    # The ledger: the rewrite, the held-then-refused request and the hard refusal.
    rows = ledger_rows(
        state,
        "SELECT requested_model, rewritten_from, status, outcome, reason FROM usage ORDER BY id",
    )
    assert rows[0][:4] == (STRONG, None, 200, "ok")
    assert rows[1][:4] == (CHEAP, STRONG, 200, "ok")
    assert rows[2][2:4] == (429, "refused") and "held until" in str(rows[2][4])
    assert rows[3][:4] == (STRONG, None, 200, "ok")
    assert rows[4][2:4] == (429, "refused") and "limit" in str(rows[4][4])
    audit = ledger_rows(state, "SELECT sender, text, outcome FROM audit")
    bursts = [row for row in audit if "allow-burst" in str(row[1])]
    assert [(sender, outcome) for sender, _, outcome in bursts] == [("console", "ok")]
    assert "release day" in str(bursts[0][1])
