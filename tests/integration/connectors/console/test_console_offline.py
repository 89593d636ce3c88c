"""The README's quick start in the real ``fleetwarden run`` console, with no config, no key
and no provider: the stub's run is answered by the offline provider through the metering
proxy, so ``runs`` and ``ps`` show the tokens and dollars it spent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.console_bot import ConsoleBot, clean_env
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

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


@pytest.mark.agent_cli
@pytest.mark.parametrize("runtime", ["claude", "codex"])
def test_a_real_cli_spawned_with_no_key_is_answered_offline(tmp_path: Path, runtime: str) -> None:
    """`spawn NAME --runtime claude|codex` with no config and no key starts the real CLI
    (given a placeholder key, never refused for want of one), and its run is answered by
    the offline provider through the proxy: priced tokens in `runs`."""
    cli(runtime)  # fails (never skips) when the CLI is not installed
    env = {k: v for k, v in clean_env().items() if k not in NO_KEYS}
    env["PATH"] = f"{bin_dir()}:{node_dir()}:{env.get('PATH', '/usr/bin:/bin')}"
    bot = ConsoleBot(tmp_path, env=env)
    try:
        bot.command(
            f'spawn asker --runtime {runtime} --prompt "count to 3"',
            rf"Agent asker started \({runtime}\)",
            STARTUP,
        )
        bot.expect(r"This is Fleetwarden's offline demo model", 120)
        runs = bot.command("runs asker", r"model requests? · ([\d,]+) tokens · \$(\d+\.\d+)")
        assert int(runs.group(1).replace(",", "")) > 0 and float(runs.group(2)) > 0
        bot.expect(r"Served by fleetwarden-demo")
        bot.command("stop asker", r"Stopped asker|asker is not running")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    assert "no credentials" not in bot.stdout and "Traceback" not in bot.stdout + bot.stderr
