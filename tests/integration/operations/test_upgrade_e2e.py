"""An upgrade keeps the ledger: today's real ``fleetwarden run`` started on a ledger the
previous release wrote (:mod:`tests.fixtures.ledgers.previous`: its migrations, a few rows
of an agent's life; on SQLite the checked-in dump, on PostgreSQL made by those migrations)
migrates it to today's schema at start, and every row is still there — in the tables and
in what ``ps`` and ``runs`` answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleet.ledger.database.engine import Database, SqliteDatabase
from fleet.ledger.database.migrations import LATEST_VERSION
from fleet.ledger.database.postgres import PostgresDatabase
from tests.fixtures.ledgers.previous import (
    AGENT,
    AT,
    DUMP,
    PREVIOUS_VERSION,
    dump_text,
    ledger_from_dump,
    write_previous,
)
from tests.integration.console_bot import ConsoleBot

pytestmark = pytest.mark.integration

CONFIG = """\
state_dir: ./state
{ledger}connectors:
  console: {{}}
agents: []
"""


class Ledger:
    """The ledger under test, on SQLite (``url`` None) or PostgreSQL."""

    def __init__(self, state: Path, url: str | None) -> None:
        self.state, self.url = state, url

    async def _open(self) -> Database:
        if self.url is None:
            return await SqliteDatabase.connect(self.state / "ledger.db")
        return await PostgresDatabase.connect(self.url)

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        async def read() -> list[tuple[object, ...]]:
            conn = await self._open()
            try:
                return [tuple(row) for row in await conn.execute_fetchall(sql)]
            finally:
                await conn.close()

        return asyncio.run(read())

    def write_previous(self) -> None:
        """The previous release's ledger: the dump on SQLite, its migrations on PostgreSQL."""
        if self.url is None:
            ledger_from_dump(self.state / "ledger.db")
            return

        async def write() -> None:
            conn = await self._open()
            try:
                await write_previous(conn)
            finally:
                await conn.close()

        asyncio.run(write())


@pytest.fixture(params=["sqlite", "postgresql"])
def upgrade_e2e_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    state = tmp_path / "state"
    state.mkdir()
    if request.param == "sqlite":
        return Ledger(state, None)
    return Ledger(state, str(request.getfixturevalue("postgres_dsn")))


def test_todays_code_migrates_the_previous_releases_ledger_keeping_its_rows(
    tmp_path: Path, upgrade_e2e_ledger: Ledger
) -> None:
    """The previous release's ledger (schema 32) is migrated to today's at start; its
    agent, run, model request and audit rows are kept, and `ps` and `runs` show them."""
    upgrade_e2e_ledger.write_previous()
    assert upgrade_e2e_ledger.rows("SELECT version FROM schema_version") == [(PREVIOUS_VERSION,)]
    assert PREVIOUS_VERSION < LATEST_VERSION  # there is a migration to run
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        CONFIG.format(
            ledger=f"ledger: {upgrade_e2e_ledger.url}\n" if upgrade_e2e_ledger.url else ""
        )
    )
    with ConsoleBot(tmp_path, "--config", str(config)) as bot:
        bot.command("ps", rf"{AGENT}")
        assert "stopped" in bot.output_since_command
        bot.command(f"runs {AGENT}", r"stopped by console")

        assert upgrade_e2e_ledger.rows("SELECT version FROM schema_version") == [(LATEST_VERSION,)]
        # made by the step the previous release lacked
        assert upgrade_e2e_ledger.rows("SELECT count(*) FROM pipeline_stages") == [(0,)]
        assert upgrade_e2e_ledger.rows("SELECT name, state, desired_state FROM agents") == [
            (AGENT, "stopped", "stopped")
        ]
        runs = "SELECT id, agent, started_at, ended_at, exit_code FROM runs"
        assert upgrade_e2e_ledger.rows(runs) == [(1, AGENT, AT, AT + 60, 0)]
        usage = "SELECT agent, input_tokens, output_tokens, cost_usd FROM usage"
        assert upgrade_e2e_ledger.rows(usage) == [(AGENT, 1200, 340, 0.0029)]
        audit = "SELECT text, outcome FROM audit ORDER BY id LIMIT 2"
        assert upgrade_e2e_ledger.rows(audit) == [(f"spawn {AGENT}", "ok"), (f"stop {AGENT}", "ok")]
        assert bot.quit() == 0, bot.stderr


def test_the_dump_is_what_the_previous_migrations_write() -> None:
    """The checked-in dump is what the previous release's migrations write today: none of
    its shipped steps changed since (a change would make the dump, and the upgrade it
    stands for, a fiction)."""
    assert dump_text() == DUMP.read_text(encoding="utf-8")
