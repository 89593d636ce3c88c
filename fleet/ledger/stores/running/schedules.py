"""The ledger's ``schedules`` table (migration 6): operator schedules — a cron expression, the
command to run, who created it and where — and the outcome of each one's latest run.

Ids are never reused
(``AUTOINCREMENT``): a schedule's id names it in the audit trail and in its runs' event ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch
from fleet.ledger.records.rows import AuditOutcome


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """One operator schedule. ``command`` is the text to run, in the bot's own grammar;
    ``created_by`` is the creator's user id on ``connector``, whose role decides, at each run,
    whether it may run; replies go to ``room``."""

    id: int
    cron: str
    command: str
    created_by: str
    connector: str
    room: str
    created_at: datetime
    last_run_at: datetime | None
    last_outcome: AuditOutcome | None
    last_detail: str | None

    @classmethod
    def from_row(cls, row: Row) -> ScheduleRecord:
        """Build from a row of ``schedules``."""
        last = row["last_run_at"]
        return cls(
            id=row["id"],
            cron=row["cron"],
            command=row["command"],
            created_by=row["created_by"],
            connector=row["connector"],
            room=row["room"],
            created_at=from_epoch(row["created_at"]),
            last_run_at=None if last is None else from_epoch(last),
            last_outcome=row["last_outcome"],
            last_detail=row["last_detail"],
        )


class SchedulesStore(Store):
    """Operator schedules and their latest runs."""

    async def add_schedule(
        self,
        *,
        cron: str,
        command: str,
        created_by: str,
        connector: str,
        room: str,
        at: datetime | None = None,
    ) -> ScheduleRecord:
        """Save a new schedule and return it with its id."""
        when = self._epoch(at)
        async with self._transaction("save a schedule") as conn:
            rows = await conn.execute_fetchall(
                "INSERT INTO schedules (cron, command, created_by, connector, room, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
                (cron, command, created_by, connector, room, when),
            )
            return ScheduleRecord.from_row(rows[0])

    async def get_schedule(self, schedule_id: int) -> ScheduleRecord | None:
        """Schedule ``schedule_id``, if it exists."""
        rows = await self._all("SELECT * FROM schedules WHERE id = ?", (schedule_id,))
        return ScheduleRecord.from_row(rows[0]) if rows else None

    async def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, oldest first."""
        rows = await self._all("SELECT * FROM schedules ORDER BY id", ())
        return [ScheduleRecord.from_row(row) for row in rows]

    async def remove_schedule(self, schedule_id: int) -> ScheduleRecord | None:
        """Delete schedule ``schedule_id``; return what it was, or ``None`` if there was none."""
        async with self._transaction(f"remove schedule {schedule_id}") as conn:
            rows = list(
                await conn.execute_fetchall("SELECT * FROM schedules WHERE id = ?", (schedule_id,))
            )
            if not rows:
                return None
            await conn.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,))
            return ScheduleRecord.from_row(rows[0])

    async def record_schedule_run(
        self,
        schedule_id: int,
        outcome: AuditOutcome,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Note that schedule ``schedule_id`` ran at ``at`` with ``outcome``; a schedule
        removed meanwhile is left removed."""
        when = self._epoch(at)
        async with self._transaction(f"record a run of schedule {schedule_id}") as conn:
            await conn.execute(
                "UPDATE schedules SET last_run_at = ?, last_outcome = ?, last_detail = ?"
                " WHERE id = ?",
                (when, outcome, detail, schedule_id),
            )
