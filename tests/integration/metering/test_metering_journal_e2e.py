"""Nothing metered lost quietly at shutdown: the real ``fleetwarden run``, a stub agent that
asks a model through the proxy, and a ledger that refuses usage rows (a trigger raising on
every insert, as a full or broken disk would). What the recorder cannot write at shutdown
is kept in a private journal under the state dir; the next start writes it to the ledger,
and a start after that writes nothing more."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
from pathlib import Path

import pytest

from fleet.metering.counting.journal import DIRECTORY
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, Turn, Usage
from tests.integration.console_bot import ConsoleBot, clean_env, stub_processes_in

pytestmark = pytest.mark.integration

PROVIDER_KEY = "fake-journal-provider-key-0123456789abcdef"
CONFIG = """\
state_dir: ./state
log_level: debug
connectors:
  console: {{}}
providers:
  anthropic:
    upstream: {upstream}
agents:
  - name: asker
    runtime: stub
    model: claude-haiku-4-5
    secret_env: [ANTHROPIC_API_KEY]
"""
USAGE = Usage(input=700, output=90, cache_read=40, cache_write=5)
REFUSE_USAGE = (
    "CREATE TRIGGER usage_refused BEFORE INSERT ON usage"
    " BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
)


def usage_rows(state: Path) -> list[tuple[object, ...]]:
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        return ledger.execute(
            "SELECT agent, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
            " outcome FROM usage ORDER BY id"
        ).fetchall()
    finally:
        ledger.close()


def on_ledger(state: Path, sql: str) -> None:
    ledger = sqlite3.connect(state / "ledger.db")
    try:
        ledger.execute(sql)
        ledger.commit()
    finally:
        ledger.close()


def journal_files(state: Path) -> list[Path]:
    return sorted((state / DIRECTORY).glob("usage-*.jsonl"))


def test_usage_the_ledger_refused_at_shutdown_is_written_once_at_the_next_start(
    tmp_path: Path,
) -> None:
    """Two answers whose usage the ledger refused are kept in a 0600 journal at shutdown;
    the next start writes both rows, as metered, and removes it; a third start adds none."""
    state = tmp_path / "state"
    with fake_provider_thread(
        default=Turn(text="kept answer", usage=USAGE),
        accept=Accepted(api_keys=frozenset({PROVIDER_KEY})),
    ) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(CONFIG.format(upstream=fake.base_url))
        env = clean_env(ANTHROPIC_API_KEY=PROVIDER_KEY)

        def start() -> ConsoleBot:
            bots.append(ConsoleBot(tmp_path, "--config", str(config), env=env))
            bots[-1].command("ps", r"agents|asker")  # up: the proxy started before the console
            return bots[-1]

        bots: list[ConsoleBot] = []
        try:
            assert start().close() == 0  # creates the ledger
            on_ledger(state, REFUSE_USAGE)

            bot = start()
            bot.command('spawn asker --prompt "ask 2"', r"asker")
            bot.command("logs asker", r"answer 2/2: kept answer", timeout=40)
            assert bot.close(timeout=60) == 0
            assert usage_rows(state) == []
            [journal] = journal_files(state)
            assert stat.S_IMODE(journal.stat().st_mode) == 0o600
            assert len(journal.read_text().splitlines()) == 2
            kept = journal.read_bytes()  # nothing the ledger row does not hold: no key
            assert not any(key.encode() in kept for key in [PROVIDER_KEY, *_proxy_keys(state)])
            assert "kept in" in bot.stderr + bot.stdout + _logs(state)

            on_ledger(state, "DROP TRIGGER usage_refused")
            assert start().close() == 0
            expected = [("asker", 700, 90, 40, 5, "ok")] * 2
            assert usage_rows(state) == expected
            assert journal_files(state) == []

            assert start().close() == 0
            assert usage_rows(state) == expected
        finally:
            for pid in stub_processes_in(state / "agents" / "asker" / "work"):
                os.kill(pid, signal.SIGKILL)  # agents outlive Fleetwarden by design
            for bot in bots:
                if bot.proc.poll() is None:
                    bot.kill()
        assert len(fake.requests) == 2
        assert {r.headers["x-api-key"] for r in fake.requests} == {PROVIDER_KEY}


def _logs(state: Path) -> str:
    return "".join(
        path.read_text(errors="replace") for path in state.rglob("*.log") if path.is_file()
    )


def _proxy_keys(state: Path) -> list[str]:
    return list(json.loads((state / "metering.json").read_text())["tokens"].values())
