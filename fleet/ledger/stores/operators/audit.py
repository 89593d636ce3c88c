"""The ledger's audit trail: every operator message and what became of it, with the
machine of the orchestrator that handled it (an active one and its standby told apart)."""

from __future__ import annotations

import socket
from datetime import datetime

from fleet.errors import LedgerError
from fleet.ledger.database.access import Store
from fleet.ledger.records.rows import AuditEntry, AuditOutcome

ORCHESTRATOR_HOST = socket.gethostname()
"""The machine this orchestrator runs on: its audit entries say so."""


class AuditStore(Store):
    """The ``audit`` table."""

    async def record_audit(
        self,
        connector: str,
        sender: str,
        room: str,
        thread: str | None,
        text: str,
        command: str | None,
        outcome: AuditOutcome,
        detail: str | None = None,
        at: datetime | None = None,
        source: str = "typed",
    ) -> int:
        """Append one operator message and its outcome to the audit trail; return its id.
        ``source`` says where the command came from: ``typed`` by the sender, or
        ``schedule:<id>`` when one of their schedules ran it."""
        when = self._epoch(at)
        rows = await self._write(  # one statement: one trip
            "write the audit trail",
            "INSERT INTO audit (at, connector, sender, room, thread, text, command, outcome,"
            " detail, source, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                *(when, connector, sender, room, thread, text, command, outcome, detail),
                *(source, ORCHESTRATOR_HOST),
            ),
        )
        if not rows:
            raise LedgerError("the ledger reported no id for an audit entry")
        return int(rows[0][0])

    async def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        """The latest ``limit`` audit entries, newest first."""
        rows = await self._all("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [AuditEntry.from_row(row) for row in rows]
