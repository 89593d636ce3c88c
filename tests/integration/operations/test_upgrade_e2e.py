"""An upgrade keeps the ledger: today's real ``fleetwarden run`` started on a ledger the
previous release wrote (:mod:`tests.fixtures.ledgers.previous`: its migrations, a few rows
of an agent's life) migrates it to today's schema at start, and every row is still there —
in the tables and in what ``ps`` and ``runs`` answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.ledger.database.migrations import LATEST_VERSION
from tests.fixtures.ledgers.previous import (
    AGENT,
    AT,
    DUMP,
    PREVIOUS_VERSION,
    dump_text,
    ledger_from_dump,
)
from tests.integration.agents.test_levers_e2e import ledger_rows
from tests.integration.console_bot import ConsoleBot

pytestmark = pytest.mark.integration

CONFIG = """\
state_dir: ./state
connectors:
  console: {}
agents: []
"""


def test_todays_code_migrates_the_previous_releases_ledger_keeping_its_rows(
    tmp_path: Path,
) -> None:
    """The previous release's ledger (schema 31) is migrated to today's at start; its
    agent, run, model request and audit rows are kept, and `ps` and `runs` show them."""
    state = tmp_path / "state"
    state.mkdir()
    ledger_from_dump(state / "ledger.db")
    assert ledger_rows(state, "SELECT version FROM schema_version") == [(PREVIOUS_VERSION,)]
    assert PREVIOUS_VERSION < LATEST_VERSION  # there is a migration to run
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG)
    with ConsoleBot(tmp_path, "--config", str(config)) as bot:
        bot.command("ps", rf"{AGENT}")
        assert "stopped" in bot.output_since_command
        bot.command(f"runs {AGENT}", r"stopped by console")

        assert ledger_rows(state, "SELECT version FROM schema_version") == [(LATEST_VERSION,)]
        tables = ledger_rows(state, "SELECT name FROM sqlite_master WHERE type = 'table'")
        assert ("mcp_calls",) in tables  # made by the step the previous release lacked
        assert ledger_rows(state, "SELECT name, state, desired_state FROM agents") == [
            (AGENT, "stopped", "stopped")
        ]
        runs = "SELECT id, agent, started_at, ended_at, exit_code FROM runs"
        assert ledger_rows(state, runs) == [(1, AGENT, AT, AT + 60, 0)]
        usage = "SELECT agent, input_tokens, output_tokens, cost_usd FROM usage"
        assert ledger_rows(state, usage) == [(AGENT, 1200, 340, 0.0029)]
        audit = "SELECT text, outcome FROM audit ORDER BY id LIMIT 2"
        assert ledger_rows(state, audit) == [(f"spawn {AGENT}", "ok"), (f"stop {AGENT}", "ok")]
        assert bot.quit() == 0, bot.stderr


def test_the_dump_is_what_the_previous_migrations_write() -> None:
    """The checked-in dump is what the previous release's migrations write today: none of
    its shipped steps changed since (a change would make the dump, and the upgrade it
    stands for, a fiction)."""
    assert dump_text() == DUMP.read_text(encoding="utf-8")
