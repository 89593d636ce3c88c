"""The README's quick start in the real ``fleetwarden run`` console, with no config, no key
and no provider: the stub's run is answered by the offline provider through the metering
proxy, so ``runs`` and ``ps`` show the tokens and dollars it spent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.console_bot import ConsoleBot, clean_env

pytestmark = pytest.mark.integration

STARTUP = 60.0  # seconds for the first answer: the whole app starts before it, on a busy host
NO_KEYS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL")


def test_quick_start_shows_tokens_and_dollars_with_no_key(tmp_path: Path) -> None:
    """`spawn demo --prompt "count to 3"` asks the offline model once; `runs demo` shows a
    model request with non-zero tokens and a dollar figure, `ps` today's tokens and cost,
    `report` what was spent today and the board the task's actual."""
    env = {k: v for k, v in clean_env().items() if k not in NO_KEYS}
    bot = ConsoleBot(tmp_path, env=env)
    try:
        bot.command('spawn demo --prompt "count to 3"', r"Agent demo started \(stub\)", STARTUP)
        bot.expect(r"stub: answer 1/1: This is Fleetwarden's offline demo model")
        bot.expect(r"stub: done")
        runs = bot.command("runs demo", r"1 model request · ([\d,]+) tokens · \$(\d+\.\d+)")
        tokens, dollars = int(runs.group(1).replace(",", "")), float(runs.group(2))
        assert tokens > 0 and dollars > 0, runs.group(0)
        bot.expect(r"Served by fleetwarden-demo")
        bot.command("ps", r"1 of 1 agent running")
        row = re.search(r"^demo\s.*$", bot.output_since_command, re.M)
        assert row is not None, bot.output_since_command
        assert re.search(rf"\s{tokens}\s+\$\d+\.\d+\s", row.group(0)), row.group(0)
        bot.command("report", r"Spent today \(since 00:00 UTC\): [\d,]+ tokens · \$\d+\.\d+")
        bot.command("tasks", r"count-to-3 · working · demo · –→\$\d+\.\d+")
        bot.command("stop demo", r"Stopped demo")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    assert "Traceback" not in bot.stdout + bot.stderr
    assert "502" not in bot.stdout


def test_a_dollar_cap_binds_with_no_provider_configured(tmp_path: Path) -> None:
    """With the offline provider answering every provider, `spawn --max-usd` caps a run of a
    model-less stub (each request is charged at the demo model's price), not refused as
    unpriced."""
    env = {k: v for k, v in clean_env().items() if k not in NO_KEYS}
    bot = ConsoleBot(tmp_path, env=env)
    try:
        bot.command(
            'spawn demo --prompt "count to 2" --max-usd 0.50',
            r"This run is capped at \$0\.50",
            STARTUP,
        )
        bot.expect(r"stub: done")
        bot.command("stop demo", r"Stopped demo")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    assert "needs the model to be known and priced" not in bot.stdout
