"""A way back from a budget set in chat, end to end: the real ``fleetwarden run`` on the
console, a stub agent spending through the metering proxy and the fake provider. A
``budget set`` that puts ``global`` past its limit says so at once and what it does to
launches; a launch it turns away names the command that would start it; the budget set
survives a restart; ``budget unset`` puts the config's budget back, audited, and that
survives a restart too."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import FAKE_KEY, Turn, Usage
from tests.integration.console_bot import ConsoleBot, clean_env, stub_processes_in, wait_until

pytestmark = pytest.mark.integration

MODEL = "claude-sonnet-4-5"
CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
providers:
  anthropic:
    upstream: {upstream}
pacing:
  tick_seconds: 1
budgets:
  - scope: global
    limit_tokens: 50000000
    window: 7d
agents:
  - name: asker
    runtime: stub
    model: {model}
    secret_env: [ANTHROPIC_API_KEY]
"""


def ledger_rows(state: Path, sql: str) -> list[tuple[object, ...]]:
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        return ledger.execute(sql).fetchall()
    finally:
        ledger.close()


def test_budget_set_then_unset_each_survive_a_restart(tmp_path: Path) -> None:
    """`budget set` past the limit says so and what it does to launches; a launch is then
    refused with the command that lifts it; after a restart the budget set is still in
    force; `budget unset` puts the config's back, audited, and a restart keeps it so."""
    state = tmp_path / "state"
    config = tmp_path / "fleetwarden.yaml"
    env = clean_env(ANTHROPIC_API_KEY=FAKE_KEY)
    with fake_provider_thread(default=Turn(text="spent", usage=Usage(input=20_000))) as fake:
        config.write_text(CONFIG.format(upstream=fake.base_url, model=MODEL))
        bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
        try:
            # 1. 20,000 tokens spent, metered into the ledger.
            bot.command('spawn asker --prompt "ask 1"', r"asker")
            assert wait_until(lambda: len(fake.requests) == 1)
            assert wait_until(lambda: ledger_rows(state, "SELECT COUNT(*) FROM usage")[0][0] == 1)
            bot.command("stop asker", r"Stopped asker")

            # 2. A budget of 1,000 tokens is past its limit the moment it is set: said at once.
            bot.command(
                "budget set global 1k --window 1d --cutoff ask",
                r"at its limit at once .* new launches are refused until .*"
                r"budget unset global`? undoes it",
            )
            # 3. A launch now is refused, saying it is not queued and how to lift the limit.
            bot.command(
                'spawn asker --prompt "ask 1"',
                r"not started: global reached its limit: no new launches until .*"
                r"raise budget global`? raises its limit \(this launch is not queued\)",
            )
            bot.command("queue", r"(?i)no launches|nothing|empty")
            assert bot.close() == 0

            # 4. Restarted: the budget set in chat is still the one in force.
            bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
            bot.command(
                "budget", r"set with `?budget set`?: it replaces the config's budget", timeout=60
            )
            assert "/ 1k" in bot.output_since_command

            # 5. Unset (typed as people type it): the config's budget is back.
            bot.command(
                "budget remove global",
                r"Budget for `?global`? unset \(it was 1k tokens per 1d\)\. The config's budget "
                r"is back: 50M tokens per 1w\.",
            )
            bot.command("budget", r"50M")
            assert "set with" not in bot.output_since_command
            assert bot.close() == 0

            # 6. Restarted again: still the config's; unsetting it again says why not.
            bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
            bot.command("budget", r"/ 50M", timeout=60)  # a loaded machine starts it slowly
            assert "set with" not in bot.output_since_command
            bot.command(
                "budget unset global",
                r"budget unset: global's budget is the config's, not one set in chat",
            )
            assert bot.close() == 0
        finally:
            for pid in stub_processes_in(state / "agents" / "asker" / "work"):
                os.kill(pid, signal.SIGKILL)
            if bot.proc.poll() is None:
                bot.kill()
    assert ledger_rows(state, "SELECT COUNT(*) FROM budgets") == [(0,)]
    audit = ledger_rows(state, "SELECT text, outcome FROM audit WHERE text LIKE 'budget %'")
    assert ("budget remove global", "ok") in audit
    assert ("budget set global 1k --window 1d --cutoff ask", "ok") in audit
