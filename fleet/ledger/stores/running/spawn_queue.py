"""The ledger's ``spawn_queue`` table (migrations 9 and 25): launches that wait — for a
free slot under a concurrency cap, or (``not_before``) for their budget's queue to clear.

Each entry keeps what is needed to start it later as if it were asked then: the agent, the
launch request itself as JSON (``launch``, from 25; the admission reads and writes it), the
command's flags as JSON and its text as typed, where it came from (``origin``: chat,
autostart, forge; ``ref``: what the origin knows it by, a forge run's id), who asked and
where (connector, room, thread), why it waits, when it was queued, and the host it is for.
An entry is ``waiting`` until it is picked; it is marked ``starting`` (committed) before the
start is attempted and removed once that is done, so a crash in between leaves a
``starting`` entry whose start is tried again under the same claimed id — and the start
itself is idempotent per agent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch, to_epoch

QueueStatus = Literal["waiting", "starting"]
RequestValue = str | int | bool | None
QueueOrigin = Literal["chat", "autostart", "forge"]


@dataclass(frozen=True, slots=True)
class SpawnAsk:
    """A launch to queue: the agent, its spawn request, the command as typed, who asked and
    where, why it waits, and (for a deferred launch) not before when; ``launch``: the
    request itself as JSON, ``origin`` and ``ref``: where it came from, and what it is
    there."""

    agent: str
    command: str
    sender: str
    connector: str
    room: str
    reason: str
    request: Mapping[str, RequestValue] = field(default_factory=dict)
    thread: str | None = None
    not_before: datetime | None = None
    origin: QueueOrigin = "chat"
    launch: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedSpawn:
    """One entry of the spawn queue (see the module docstring)."""

    id: int
    agent: str
    request: Mapping[str, RequestValue]
    command: str
    sender: str
    connector: str
    room: str
    thread: str | None
    reason: str
    queued_at: datetime
    not_before: datetime | None
    host: str
    status: QueueStatus
    origin: QueueOrigin = "chat"
    launch: str | None = None
    ref: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> QueuedSpawn:
        """Build from a row of ``spawn_queue``."""
        not_before = row["not_before"]
        request = json.loads(row["request_json"])
        return cls(
            id=row["id"],
            agent=row["agent"],
            request=request if isinstance(request, dict) else {},
            command=row["command"],
            sender=row["sender"],
            connector=row["connector"],
            room=row["room"],
            thread=row["thread"],
            reason=row["reason"],
            queued_at=from_epoch(row["queued_at"]),
            not_before=None if not_before is None else from_epoch(not_before),
            host=row["host"],
            status=row["status"],
            origin=row["origin"] or ("chat" if row["connector"] else "autostart"),
            launch=row["launch_json"],
            ref=row["ref"],
        )

    def due(self, now: datetime) -> bool:
        """Whether its ``not_before`` (if any) has passed."""
        return self.not_before is None or self.not_before <= now


class SpawnQueueStore(Store):
    """Spawns waiting for room to run."""

    async def enqueue_spawn(
        self, ask: SpawnAsk, *, host: str, at: datetime | None = None
    ) -> QueuedSpawn:
        """Append ``ask`` to ``host``'s queue and return the entry with its id."""
        when = self._epoch(at)
        not_before = None if ask.not_before is None else to_epoch(ask.not_before)
        request = json.dumps(dict(ask.request), sort_keys=True)
        async with self._transaction(f"queue a launch of {ask.agent}") as conn:
            rows = await conn.execute_fetchall(
                "INSERT INTO spawn_queue (agent, request_json, command, sender, connector,"
                " room, thread, reason, queued_at, not_before, host, origin, launch_json, ref)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    *(ask.agent, request, ask.command, ask.sender, ask.connector, ask.room),
                    *(ask.thread, ask.reason, when, not_before, host),
                    *(ask.origin, ask.launch, ask.ref),
                ),
            )
            return QueuedSpawn.from_row(rows[0])

    async def queued_spawns(self, host: str | None = None) -> list[QueuedSpawn]:
        """The queue in order (oldest first): ``host``'s, or every host's."""
        if host is None:
            rows = await self._all("SELECT * FROM spawn_queue ORDER BY id", ())
        else:
            rows = await self._all("SELECT * FROM spawn_queue WHERE host = ? ORDER BY id", (host,))
        return [QueuedSpawn.from_row(row) for row in rows]

    async def queued_spawn(self, entry_id: int) -> QueuedSpawn | None:
        """Entry ``entry_id``, if it is still queued."""
        rows = await self._all("SELECT * FROM spawn_queue WHERE id = ?", (entry_id,))
        return QueuedSpawn.from_row(rows[0]) if rows else None

    async def mark_spawn_starting(self, entry_id: int) -> bool:
        """Mark a ``waiting`` entry ``starting``; false if it is gone or already starting
        (so two pickers never both start it)."""
        async with self._transaction(f"mark queued launch {entry_id} starting") as conn:
            cursor = await conn.execute(
                "UPDATE spawn_queue SET status = 'starting' WHERE id = ? AND status = 'waiting'",
                (entry_id,),
            )
            return cursor.rowcount == 1

    async def requeue_spawn(self, entry_id: int, reason: str, not_before: datetime | None) -> None:
        """Put a ``starting`` entry back to ``waiting`` in its place, with a new reason and
        ``not_before`` (its start was turned away again)."""
        later = None if not_before is None else to_epoch(not_before)
        async with self._transaction(f"requeue launch {entry_id}") as conn:
            await conn.execute(
                "UPDATE spawn_queue SET status = 'waiting', reason = ?, not_before = ?"
                " WHERE id = ?",
                (reason, later, entry_id),
            )

    async def finish_spawn(self, entry_id: int) -> bool:
        """Remove a ``starting`` entry once its start was tried; false if it is not
        starting (it was put back to wait, or is gone)."""
        async with self._transaction(f"remove queued launch {entry_id}") as conn:
            cursor = await conn.execute(
                "DELETE FROM spawn_queue WHERE id = ? AND status = 'starting'", (entry_id,)
            )
            return cursor.rowcount == 1

    async def cancel_spawn(self, entry_id: int) -> QueuedSpawn | None:
        """Remove a ``waiting`` entry; what it was, or ``None`` if there is no such entry
        waiting (a ``starting`` one is being started and cannot be cancelled)."""
        async with self._transaction(f"cancel queued launch {entry_id}") as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT * FROM spawn_queue WHERE id = ? AND status = 'waiting'", (entry_id,)
                )
            )
            if not rows:
                return None
            await conn.execute("DELETE FROM spawn_queue WHERE id = ?", (entry_id,))
            return QueuedSpawn.from_row(rows[0])
