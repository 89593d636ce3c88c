"""The ledger's ``messages`` table (migration 29): every message one agent sent another,
refused ones too, with its receipt — the audit of what agents said to each other."""

from __future__ import annotations

from datetime import datetime

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row, insert_id
from fleet.ledger.records.epoch import from_epoch
from fleet.ledger.records.peers import MessageKind, MessageRecord, MessageState, NewMessage


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _message(row: Row) -> MessageRecord:
    delivered = row["delivered_at"]
    kind: MessageKind = row["kind"]
    state: MessageState = row["state"]
    return MessageRecord(
        id=int(row["id"]),
        sender=str(row["sender"]),
        receiver=str(row["receiver"]),
        kind=kind,
        text=str(row["text"]),
        state=state,
        why=str(row["why"]),
        sender_run=_optional_int(row["sender_run"]),
        task_id=_optional_int(row["task_id"]),
        sent_at=from_epoch(float(row["sent_at"])),
        delivered_at=None if delivered is None else from_epoch(float(delivered)),
        delivered_run=_optional_int(row["delivered_run"]),
    )


class MessagesStore(Store):
    """Messages between agents: recorded as they are sent, marked as they are delivered."""

    async def add_message(self, new: NewMessage) -> MessageRecord:
        """Record ``new`` (its text already redacted), sent now."""
        async with self._transaction(f"record a message of {new.sender}") as conn:
            message_id = await insert_id(
                conn,
                "INSERT INTO messages (sender, receiver, kind, text, state, why, sender_run,"
                " task_id, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.sender,
                    new.receiver,
                    new.kind,
                    new.text,
                    new.state,
                    new.why,
                    new.sender_run,
                    new.task_id,
                    self._epoch(None),
                ),
            )
        found = await self.message(message_id)
        assert found is not None  # just written
        return found

    async def message(self, message_id: int) -> MessageRecord | None:
        """Message ``message_id``, or ``None``."""
        row = await self._one("SELECT * FROM messages WHERE id = ?", (message_id,))
        return None if row is None else _message(row)

    async def queued_for(self, receiver: str) -> list[MessageRecord]:
        """The messages waiting for ``receiver``, oldest first. Only words to a peer wait
        here: a task handed on and a review's verdict are settled by whoever recorded them
        (the hand-off, the review stage), never delivered a second time from the queue."""
        rows = await self._all(
            "SELECT * FROM messages WHERE receiver = ? AND state = 'queued'"
            " AND kind = 'message' ORDER BY id",
            (receiver,),
        )
        return [_message(row) for row in rows]

    async def receivers_waited_for(self) -> list[str]:
        """Every agent a message waits for, by name."""
        rows = await self._all(
            "SELECT DISTINCT receiver FROM messages WHERE state = 'queued' AND kind = 'message'"
            " ORDER BY receiver",
            (),
        )
        return [str(row["receiver"]) for row in rows]

    async def tasks_waiting(self, receiver: str | None = None) -> list[MessageRecord]:
        """The tasks handed on to ``receiver`` (to anyone: ``None``) that wait for it to be
        free, oldest first: their messages of kind ``task`` still queued."""
        sql = "SELECT * FROM messages WHERE state = 'queued' AND kind = 'task'"
        params: tuple[object, ...] = ()
        if receiver is not None:
            sql += " AND receiver = ?"
            params = (receiver,)
        rows = await self._all(sql + " ORDER BY id", params)
        return [_message(row) for row in rows]

    async def count_queued(self, receiver: str) -> int:
        """How many messages wait for ``receiver``: those :meth:`queued_for` lists (a
        ``wake: start`` peer's among them, while its launch waits for a slot) and the tasks
        handed on that wait for it to be free (:meth:`tasks_waiting`)."""
        row = await self._one(
            "SELECT COUNT(*) AS n FROM messages WHERE receiver = ? AND state = 'queued'"
            " AND kind IN ('message', 'task')",
            (receiver,),
        )
        return 0 if row is None else int(row["n"])

    async def sent_since(self, sender: str, since: datetime) -> int:
        """How many messages ``sender`` sent since ``since`` that were not refused — or
        were, once their task was made (a task handed on whose run was refused still is
        one more task in the register)."""
        row = await self._one(
            "SELECT COUNT(*) AS n FROM messages WHERE sender = ? AND sent_at >= ?"
            " AND (state <> 'refused' OR task_id IS NOT NULL)",
            (sender, self._epoch(since)),
        )
        return 0 if row is None else int(row["n"])

    async def refused_since(self, sender: str, since: datetime) -> int:
        """How many of ``sender``'s messages since ``since`` were refused."""
        row = await self._one(
            "SELECT COUNT(*) AS n FROM messages WHERE sender = ? AND sent_at >= ?"
            " AND state = 'refused'",
            (sender, self._epoch(since)),
        )
        return 0 if row is None else int(row["n"])

    async def first_into(self, run_id: int, sender: str) -> MessageRecord | None:
        """The first message from ``sender`` delivered into run ``run_id`` (one that woke
        it, a task that started it, or words typed into it), if any."""
        row = await self._one(
            "SELECT * FROM messages WHERE delivered_run = ? AND sender = ?"
            " AND state = 'delivered' ORDER BY id LIMIT 1",
            (run_id, sender),
        )
        return None if row is None else _message(row)

    async def delivered(self, message_id: int, run_id: int | None) -> bool:
        """Mark ``message_id`` delivered into run ``run_id`` now, only if it still waited;
        whether it did (two deliverers never both win)."""
        async with self._transaction(f"mark message {message_id} delivered") as conn:
            cursor = await conn.execute(
                "UPDATE messages SET state = 'delivered', delivered_at = ?, delivered_run = ?"
                " WHERE id = ? AND state = 'queued'",
                (self._epoch(None), run_id, message_id),
            )
            return bool(cursor.rowcount)

    async def refused(self, message_id: int, why: str) -> bool:
        """Mark ``message_id`` refused saying ``why``, only if it still waited."""
        async with self._transaction(f"mark message {message_id} refused") as conn:
            cursor = await conn.execute(
                "UPDATE messages SET state = 'refused', why = ? WHERE id = ? AND state = 'queued'",
                (why, message_id),
            )
            return bool(cursor.rowcount)

    async def recent(self, agent: str | None = None, limit: int = 20) -> list[MessageRecord]:
        """The newest ``limit`` messages (those ``agent`` sent or was sent), newest first."""
        if agent is None:
            rows = await self._all("SELECT * FROM messages ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = await self._all(
                "SELECT * FROM messages WHERE sender = ? OR receiver = ? ORDER BY id DESC LIMIT ?",
                (agent, agent, limit),
            )
        return [_message(row) for row in rows]

    async def counts(self) -> dict[tuple[MessageKind, MessageState], int]:
        """How many messages of each kind are in each state, all time (``/metrics``)."""
        rows = await self._all(
            "SELECT kind, state, COUNT(*) AS n FROM messages GROUP BY kind, state"
            " ORDER BY kind, state",
            (),
        )
        counted: dict[tuple[MessageKind, MessageState], int] = {}
        for row in rows:
            kind: MessageKind = row["kind"]
            state: MessageState = row["state"]
            counted[(kind, state)] = int(row["n"])
        return counted
