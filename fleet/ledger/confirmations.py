"""The ledger's ``confirmations`` table (migration 14): commands that wait for their asker's
confirming reply — ``freeze all``, ``stop all`` — in the place they were asked (connector,
room, thread), until a deadline.

The table, not memory, holds them: a restart keeps one that is still live, and an expired
one never acts. A row is taken (deleted) by the reply that confirms it, in one transaction
that checks the deadline, so two replies cannot both act. Expired rows stay for
:data:`KEPT_EXPIRED` only to tell a late reply why nothing happened.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from fleet.ledger.access import Store
from fleet.ledger.engine import Row, insert_id
from fleet.ledger.rows import from_epoch, to_epoch

KEPT_EXPIRED: Final = timedelta(minutes=10)
"""How long past its deadline a confirmation is kept, to answer a late reply."""


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A command waiting for ``sender``'s reply in a place."""

    id: int
    connector: str
    sender: str
    room: str
    thread: str | None
    command: str  # the command's text, run as typed once confirmed
    summary: str  # what it was going to do, as the question said
    asked_at: datetime
    expires_at: datetime
    host: str

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class ConfirmationsLedger:
    """The confirmation queries of :class:`~fleet.ledger.store.Ledger`."""

    async def ask_confirmation(
        self: Store,
        *,
        connector: str,
        sender: str,
        room: str,
        thread: str | None,
        command: str,
        summary: str,
        expires_at: datetime,
    ) -> Confirmation:
        """Record a command waiting for ``sender``'s reply in this place; it replaces what
        they were asked there before. Rows long expired are dropped on the way."""
        now = self._clock.now()
        host = socket.gethostname()
        async with self._transaction("record a confirmation asked for") as conn:
            await conn.execute(
                "DELETE FROM confirmations WHERE expires_at < ?", (to_epoch(now - KEPT_EXPIRED),)
            )
            await conn.execute(
                "DELETE FROM confirmations WHERE connector = ? AND sender = ? AND room = ?"
                " AND thread IS ?",
                (connector, sender, room, thread),
            )
            row_id = await insert_id(
                conn,
                "INSERT INTO confirmations (connector, sender, room, thread, command, summary,"
                " asked_at, expires_at, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    connector,
                    sender,
                    room,
                    thread,
                    command,
                    summary,
                    to_epoch(now),
                    to_epoch(expires_at),
                    host,
                ),
            )
        return Confirmation(
            row_id, connector, sender, room, thread, command, summary, now, expires_at, host
        )

    async def confirmations_at(
        self: Store, connector: str, room: str, thread: str | None
    ) -> list[Confirmation]:
        """What waits in this place (expired ones still kept included), newest first."""
        since = to_epoch(self._clock.now() - KEPT_EXPIRED)
        rows = await self._all(
            "SELECT * FROM confirmations WHERE connector = ? AND room = ? AND thread IS ?"
            " AND expires_at >= ? ORDER BY id DESC",
            (connector, room, thread, since),
        )
        return [_confirmation(row) for row in rows]

    async def take_confirmation(self: Store, confirmation_id: int) -> bool:
        """Take confirmation ``confirmation_id`` to act on it: whether it was still there
        and live (a late or second reply gets ``False``). Taken, it is gone either way."""
        now = to_epoch(self._clock.now())
        async with self._transaction("take a confirmation") as conn:
            cursor = await conn.execute(
                "DELETE FROM confirmations WHERE id = ? AND expires_at > ?",
                (confirmation_id, now),
            )
            live = cursor.rowcount > 0
            if not live:
                await conn.execute("DELETE FROM confirmations WHERE id = ?", (confirmation_id,))
        return live


def _confirmation(row: Row) -> Confirmation:
    return Confirmation(
        id=row["id"],
        connector=row["connector"],
        sender=row["sender"],
        room=row["room"],
        thread=row["thread"],
        command=row["command"],
        summary=row["summary"],
        asked_at=from_epoch(row["asked_at"]),
        expires_at=from_epoch(row["expires_at"]),
        host=row["host"],
    )
