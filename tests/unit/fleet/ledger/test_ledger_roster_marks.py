"""The ledger's roster marks (migration 10): origin, removal from the roster, forgetting an
agent — against a real SQLite file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fleet.ledger import MIGRATIONS, Ledger, migrate
from fleet.ledger.database.engine import SqliteDatabase
from fleet.model import AgentSpec, DesiredState, ExitInfo, RunHandle
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.usage import metered
from tests.unit.chat_fakes import T0  # where the shared `clock` fixture stands


def spec(name: str) -> AgentSpec:
    return AgentSpec(name=AgentName(name), runtime="stub", backend="subprocess")


def handle(name: str) -> RunHandle:
    run_dir = Path("/run/fw") / name
    return RunHandle("subprocess", 4242, 4242, run_dir, run_dir / "log")


async def names(ledger: Ledger) -> list[str]:
    return [record.name for record in await ledger.agents.list_agents()]


async def test_migration_10_keeps_older_agents_as_ad_hoc_and_in_place(
    tmp_path: Path, clock: ManualClock
) -> None:
    """A version-9 ledger's agents come through 10 as ad hoc (origin spawn), not removed, not
    forgotten: nothing changes for them until a start sees the roster."""
    path = tmp_path / "ledger.db"
    conn = await SqliteDatabase.connect(path)
    try:
        assert await migrate(conn, MIGRATIONS[:9]) == 9
        await conn.execute(
            "INSERT INTO agents (name, runtime, backend, desired_state, state, state_changed_at,"
            " created_at, updated_at) VALUES ('old', 'stub', 'subprocess', 'running', 'exited',"
            " 1.0, 1.0, 1.0)"
        )
    finally:
        await conn.close()
    ledger = await Ledger.open(path, clock)
    try:
        assert await ledger.schema_version() >= 10
        record = await ledger.agents.get_agent("old")
        assert record is not None
        assert (record.origin, record.removed_at) == ("spawn", None)
        assert await names(ledger) == ["old"]
    finally:
        await ledger.close()


async def test_migration_10_is_three_columns_on_agents() -> None:
    """Migration 10 adds origin, removed_at and forgotten_at to agents, and nothing else."""
    migration = MIGRATIONS[9]
    assert migration.version == 10
    assert [s.split(" ADD COLUMN ")[1].split()[0] for s in migration.statements] == [
        "origin",
        "removed_at",
        "forgotten_at",
    ]
    assert all(s.startswith("ALTER TABLE agents ADD COLUMN") for s in migration.statements)


async def test_a_spawn_records_where_the_settings_came_from(ledger: Ledger) -> None:
    """upsert_agent with an origin saves it; a new agent without one is ad hoc."""
    await ledger.agents.upsert_agent(spec("boss"), DesiredState.RUNNING, origin="roster")
    await ledger.agents.upsert_agent(spec("temp"), DesiredState.RUNNING)
    boss, temp = await ledger.agents.list_agents()
    assert (boss.origin, temp.origin) == ("roster", "spawn")


async def test_sync_roster_marks_dropped_roster_agents_removed_once(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Roster agents missing from the names are marked removed now and returned, once; ad hoc
    agents are never 'removed'; an agent named again is back in the roster."""
    await ledger.agents.upsert_agent(spec("boss"), DesiredState.RUNNING, origin="roster")
    await ledger.agents.upsert_agent(spec("gone"), DesiredState.RUNNING, origin="roster")
    await ledger.agents.upsert_agent(spec("temp"), DesiredState.RUNNING, origin="spawn")
    clock.advance(300)
    assert await ledger.agents.sync_roster(["boss"]) == ["gone"]
    gone = await ledger.agents.get_agent("gone")
    assert gone is not None and gone.removed_at == T0 + timedelta(minutes=5)
    temp = await ledger.agents.get_agent("temp")
    assert temp is not None and temp.removed_at is None and temp.origin == "spawn"
    clock.advance(300)
    assert await ledger.agents.sync_roster(["boss"]) == []  # already removed: its time stays
    gone = await ledger.agents.get_agent("gone")
    assert gone is not None and gone.removed_at == T0 + timedelta(minutes=5)
    assert await ledger.agents.sync_roster(["boss", "gone", "temp"]) == []
    back, adopted = await ledger.agents.get_agent("gone"), await ledger.agents.get_agent("temp")
    assert back is not None and (back.origin, back.removed_at) == ("roster", None)
    assert adopted is not None and adopted.origin == "roster"


async def test_only_a_spawn_clears_a_removal(ledger: Ledger) -> None:
    """Saving a removed agent's spec without an origin (a restart, a follow-up) keeps the
    mark; with one (an operator's spawn) clears it."""
    await ledger.agents.upsert_agent(spec("gone"), DesiredState.RUNNING, origin="roster")
    await ledger.agents.sync_roster([])
    await ledger.agents.upsert_agent(spec("gone"), DesiredState.RUNNING)
    record = await ledger.agents.get_agent("gone")
    assert record is not None and record.removed_at is not None
    await ledger.agents.upsert_agent(spec("gone"), DesiredState.RUNNING, origin="spawn")
    record = await ledger.agents.get_agent("gone")
    assert record is not None and (record.origin, record.removed_at) == ("spawn", None)


async def test_forget_hides_the_agent_and_keeps_its_runs_and_usage(ledger: Ledger) -> None:
    """A forgotten agent is in no list and no lookup; its runs, its usage and the spend
    history built from them stay."""
    await ledger.agents.upsert_agent(spec("gone"), DesiredState.RUNNING, origin="roster")
    await ledger.agents.upsert_agent(spec("boss"), DesiredState.RUNNING, origin="roster")
    run = await ledger.runs.start_run("gone", handle("gone"), at=T0)
    await ledger.metering.record_metering([metered("gone", T0 + timedelta(seconds=5))], [])
    await ledger.runs.end_run(run.id, ExitInfo(0, "done"), at=T0 + timedelta(seconds=10))
    assert await ledger.agents.forget_agent("gone")
    assert not await ledger.agents.forget_agent("gone")  # nothing left to forget
    assert not await ledger.agents.forget_agent("nobody")
    assert await ledger.agents.get_agent("gone") is None
    assert await names(ledger) == ["boss"]
    assert await ledger.agents.sync_roster(["boss"]) == []  # a forgotten agent is not 'removed'
    last = await ledger.runs.last_run("gone")
    assert last is not None and last.id == run.id
    [total] = await ledger.metering.usage_totals(T0 - timedelta(hours=1), agent="gone")
    assert total.tokens.input == 100
    assert (await ledger.metering.tokens_by_agent(T0 - timedelta(hours=1)))["gone"] == 120
    assert [tokens for *_, tokens in await ledger.metering.run_spend()] == [120]


async def test_a_spawn_after_forget_starts_afresh(ledger: Ledger) -> None:
    """upsert_agent of a forgotten agent brings it back with no removal mark and its restart
    count at zero; its old runs are still there."""
    await ledger.agents.upsert_agent(spec("gone"), DesiredState.RUNNING, origin="roster")
    await ledger.agents.set_restarts(
        "gone", in_a_row=3, last_at=T0, next_at=T0 + timedelta(seconds=9)
    )
    await ledger.agents.sync_roster([])
    await ledger.agents.forget_agent("gone")
    record = await ledger.agents.upsert_agent(spec("gone"), DesiredState.RUNNING, origin="spawn")
    assert (record.origin, record.removed_at, record.restarts_in_a_row) == ("spawn", None, 0)
    assert (record.last_restart_at, record.next_restart_at) == (None, None)
    assert await names(ledger) == ["gone"]
