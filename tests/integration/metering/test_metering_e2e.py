"""Metering end to end: the real ``fleetwarden run``, a stub agent that asks a model, the
fake provider behind the proxy, and what operators see in ``usage`` and ``ps``. Then the
grep: no secret, neither the provider key nor the agent's proxy key, in any log or the
ledger."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, Turn, Usage
from tests.integration.console_bot import ConsoleBot, clean_env, stub_processes_in

pytestmark = pytest.mark.integration

PROVIDER_KEY = "fake-e2e-provider-key-never-to-be-seen-0123456789abcdef"
CONFIG = """\
state_dir: ./state
log_level: debug
connectors:
  console: {{}}
providers:
  anthropic:
    upstream: {upstream}
prices:
  claude-haiku-4-5: {{input: 1.0, output: 5.0, cache_read: 0.1, cache_write: 1.25}}
agents:
  - name: asker
    runtime: stub
    model: claude-haiku-4-5
    secret_env: [ANTHROPIC_API_KEY]
"""
USAGE = Usage(input=1000, output=200, cache_read=3000, cache_write=500)


def test_an_agents_model_requests_are_metered_and_shown(tmp_path: Path) -> None:
    accept = Accepted(api_keys=frozenset({PROVIDER_KEY}))
    with fake_provider_thread(
        default=Turn(text="metered answer", usage=USAGE), accept=accept
    ) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(CONFIG.format(upstream=fake.base_url))
        bot = ConsoleBot(
            tmp_path, "--config", str(config), env=clean_env(ANTHROPIC_API_KEY=PROVIDER_KEY)
        )
        try:
            bot.command('spawn asker --prompt "ask 2"', r"asker")
            bot.command("logs asker", r"answer 2/2: metered answer", timeout=30)
            # The recorder writes in batches: usage may trail the answer by a moment.
            for _ in range(50):
                bot.command("usage asker", r"asker")
                time.sleep(0.1)
                if "claude-haiku-4-5" in bot.output_since_command:
                    break
            out = bot.output_since_command
            assert "claude-haiku-4-5" in out, out
            row = next(line.split() for line in out.splitlines() if line.startswith("asker"))
            total = 2 * (USAGE.input + USAGE.output + USAGE.cache_read + USAGE.cache_write)
            assert row[3:9] == ["2", "2,000", "400", "6,000", "1,000", f"{total:,}"], out
            cost = 2 * (1000 * 1.0 + 200 * 5.0 + 3000 * 0.1 + 500 * 1.25) / 1_000_000
            assert f"${cost:.4f}" in out, out
            bot.command("ps", r"asker")
            assert "9.4k" in bot.expect(r"asker.*").group(0)
            bot.command("stop asker", r"Stopped asker")
            assert bot.close() == 0
        finally:
            for pid in stub_processes_in(tmp_path / "state" / "agents" / "asker" / "work"):
                os.kill(pid, signal.SIGKILL)  # agents outlive Fleetwarden by design
            if bot.proc.poll() is None:
                bot.kill()
        assert [r.headers["x-api-key"] for r in fake.requests] == [PROVIDER_KEY] * 2
        assert all("/a/" not in r.path for r in fake.requests)

    state = tmp_path / "state"
    ledger = sqlite3.connect(state / "ledger.db")
    rows = ledger.execute(
        "SELECT agent, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
        "outcome FROM usage ORDER BY id"
    ).fetchall()
    ledger.close()
    assert rows == [("asker", 1000, 200, 3000, 500, "ok")] * 2

    # No secret anywhere it could leak: the bot's output and logs, the agent's log, the
    # ledger (and its WAL). The proxy key lives only in metering.json (mode 0600).
    proxy_keys = json.loads((state / "metering.json").read_text())["tokens"].values()
    secrets = [PROVIDER_KEY, *proxy_keys]
    assert len(secrets) == 2
    haystacks = {"stdout": bot.stdout.encode(), "stderr": bot.stderr.encode()}
    for path in state.rglob("*"):
        if path.is_file() and path.name != "metering.json":
            haystacks[str(path.relative_to(state))] = path.read_bytes()
    for where, data in haystacks.items():
        for secret in secrets:
            assert secret.encode() not in data, f"a secret leaked into {where}"
