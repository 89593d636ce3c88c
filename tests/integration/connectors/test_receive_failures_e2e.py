"""Commands that could not be handled, through the real ``fleetwarden run`` on its console:
while another process holds the ledger's write lock, each command fails — logged with
the connector, counted in ``/metrics``, and three in a row a problem in ``ps`` and in
the dashboard's ``/api/fleet`` — and once the lock is gone the next command runs and the
problem clears."""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from connectors.receiving import KEEPS_FAILING
from tests.integration.console_bot import ConsoleBot, clean_env, wait_until
from tests.postgres_server import free_port

pytestmark = pytest.mark.integration

TOKEN_ENV = "FW_TEST_METRICS_TOKEN"
TOKEN = "metrics-token-for-this-test-0123456789"
CONFIG = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
dashboard:
  listen: 127.0.0.1:{port}
  metrics_token_env: FW_TEST_METRICS_TOKEN
"""
BUSY_SECONDS = 5  # the ledger's busy_timeout: each failing command waits this long
NOT_HANDLED = "console: event (no id) was not handled"


def get(url: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def counted(base: str) -> float:
    """``fleetwarden_chat_receive_failures_total{connector="console"}`` as scraped."""
    found = re.search(
        r'^fleetwarden_chat_receive_failures_total\{connector="console"\} (\S+)$',
        get(f"{base}/metrics"),
        re.M,
    )
    return float(found.group(1)) if found else 0.0


def test_commands_that_fail_are_counted_and_shown_until_one_runs(tmp_path: Path) -> None:
    """A locked ledger makes each command fail; the log, /metrics, ps and /api/fleet say
    so; the first command after the lock runs and the problem is gone."""
    port = free_port()
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(port=port))
    base = f"http://127.0.0.1:{port}"
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(**{TOKEN_ENV: TOKEN}))
    try:
        bot.command("whoami", r"admin")
        assert counted(base) == 0
        holder = sqlite3.connect(tmp_path / "state" / "ledger.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            for _ in range(KEEPS_FAILING):
                bot.send("whoami")
            timeout = KEEPS_FAILING * (BUSY_SECONDS + 5)
            assert wait_until(
                lambda: bot.stderr.count(NOT_HANDLED) >= KEEPS_FAILING, timeout=timeout
            ), bot.stderr[-3000:]
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert "database is locked" in bot.stderr
        assert counted(base) == KEEPS_FAILING
        fleet = json.loads(get(f"{base}/api/fleet"))
        [problem] = fleet["problems"]
        assert problem.startswith(f"console: the last {KEEPS_FAILING} events received")
        bot.command("ps", rf"Problem: console: the last {KEEPS_FAILING} events received")
        # The ps above was handled: the run of failures is over.
        assert json.loads(get(f"{base}/api/fleet"))["problems"] == []
        bot.command("ps", r"No agents yet")
        assert "Problem" not in bot.output_since_command
        assert bot.close() == 0, bot.stderr[-3000:]
    finally:
        if bot.proc.poll() is None:
            bot.kill()
