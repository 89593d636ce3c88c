"""Tests for fleet.ledger.stores.running.schedules: the schedules table (migration 6) and the
audit's source."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from fleet.errors import LedgerError
from fleet.ledger import MIGRATIONS, Ledger, ScheduleRecord, migrate
from fleet.ledger.database.engine import SqliteDatabase
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0

ADMIN = "@ann:example.org"


async def add(ledger: Ledger, command: str = "ps", cron: str = "0 2 * * *") -> ScheduleRecord:
    return await ledger.schedules.add_schedule(
        cron=cron, command=command, created_by=ADMIN, connector="matrix", room="!r:example.org"
    )


async def test_a_new_schedule_is_saved_with_an_id_and_no_runs(ledger: Ledger) -> None:
    """add_schedule returns the row it saved: fields as given, created now, never run."""
    record = await add(ledger, "spawn reviewer --prompt 'review'")
    assert record == ScheduleRecord(
        id=1,
        cron="0 2 * * *",
        command="spawn reviewer --prompt 'review'",
        created_by=ADMIN,
        connector="matrix",
        room="!r:example.org",
        created_at=T0,
        last_run_at=None,
        last_outcome=None,
        last_detail=None,
    )
    assert await ledger.schedules.get_schedule(1) == record
    assert await ledger.schedules.list_schedules() == [record]


async def test_schedules_are_listed_oldest_first(ledger: Ledger) -> None:
    """list_schedules orders by id."""
    first, second = await add(ledger, "ps"), await add(ledger, "usage")
    assert [s.id for s in await ledger.schedules.list_schedules()] == [first.id, second.id]


async def test_remove_returns_what_was_removed_and_none_the_second_time(ledger: Ledger) -> None:
    """remove_schedule deletes and returns the row; a missing id gives None."""
    record = await add(ledger)
    assert await ledger.schedules.remove_schedule(record.id) == record
    assert await ledger.schedules.remove_schedule(record.id) is None
    assert await ledger.schedules.get_schedule(record.id) is None


async def test_ids_are_never_reused(ledger: Ledger) -> None:
    """After the newest schedule is removed, the next one gets a new id (it names runs)."""
    first = await add(ledger)
    await ledger.schedules.remove_schedule(first.id)
    assert (await add(ledger)).id == first.id + 1


async def test_a_run_is_recorded_on_the_schedule(ledger: Ledger) -> None:
    """record_schedule_run keeps the latest run's time, outcome and detail."""
    record = await add(ledger)
    await ledger.schedules.record_schedule_run(record.id, "ok", at=T0 + timedelta(hours=1))
    await ledger.schedules.record_schedule_run(
        record.id, "denied", "not an operator", at=T0 + timedelta(hours=2)
    )
    saved = await ledger.schedules.get_schedule(record.id)
    assert saved is not None
    assert (saved.last_run_at, saved.last_outcome, saved.last_detail) == (
        T0 + timedelta(hours=2),
        "denied",
        "not an operator",
    )


async def test_a_run_of_a_removed_schedule_leaves_it_removed(ledger: Ledger) -> None:
    """Recording a run of a schedule removed meanwhile changes nothing."""
    record = await add(ledger)
    await ledger.schedules.remove_schedule(record.id)
    await ledger.schedules.record_schedule_run(record.id, "ok")
    assert await ledger.schedules.list_schedules() == []


async def test_the_outcome_is_checked(ledger: Ledger) -> None:
    """Only the audit outcomes may be stored as a run's outcome."""
    record = await add(ledger)
    with pytest.raises(LedgerError):
        await ledger.schedules.record_schedule_run(record.id, "maybe")  # type: ignore[arg-type]


async def test_audit_entries_say_where_the_command_came_from(ledger: Ledger) -> None:
    """record_audit defaults the source to typed; a scheduled run's source is kept."""
    common = {"connector": "matrix", "sender": ADMIN, "room": "!r", "thread": None}
    await ledger.audit.record_audit(**common, text="ps", command="ps", outcome="ok")
    await ledger.audit.record_audit(
        **common, text="ps", command="ps", outcome="ok", source="schedule:1"
    )
    newest, oldest = await ledger.audit.audit_entries()
    assert (oldest.source, newest.source) == ("typed", "schedule:1")


async def test_migration_6_keeps_the_audit_trail_as_typed(tmp_path: Path) -> None:
    """A version-5 ledger's audit entries read back as typed after migration 6, and the
    schedules table is there, empty."""
    path = tmp_path / "ledger.db"
    conn = await SqliteDatabase.connect(path)
    try:
        assert await migrate(conn, MIGRATIONS[:5]) == 5
        await conn.execute(
            "INSERT INTO audit (at, connector, sender, room, text, outcome)"
            " VALUES (1.0, 'console', 'console', 'console', 'ps', 'ok')"
        )
    finally:
        await conn.close()
    ledger = await Ledger.open(path, ManualClock(T0))
    try:
        assert await ledger.schema_version() >= 6
        [entry] = await ledger.audit.audit_entries()
        assert entry.source == "typed"
        assert await ledger.schedules.list_schedules() == []
    finally:
        await ledger.close()
