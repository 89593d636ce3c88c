"""The chat bookkeeping a connector and the router keep in the ledger: which thread holds
which topic (an agent) in which room, which chat events were already handled, and small
values a connector saves between runs (a sync token).

These tables are about conversations, not the fleet; they share the one ledger file so a
write is one transaction with the rest. What the bot did with each message it claimed
(``chat_answers``) and the commands waiting for a confirming reply (``confirmations``) are
here too; their records are in :mod:`fleet.ledger.records.chat`.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import insert_id, replace_into
from fleet.ledger.records.chat import (
    KEPT_EXPIRED,
    AnswerState,
    ChatAnswer,
    Confirmation,
    confirmation_from_row,
)
from fleet.ledger.records.epoch import to_epoch

_CLAIM_ANSWER: Final = replace_into(
    "chat_answers",
    ("connector", "event_id"),
    ("connector", "event_id", "sender", "room", "thread", "state", "at"),
    reset={"command": "NULL", "outcome": "NULL"},
)


class ChatStore(Store):
    """Threads per topic, processed chat events, connector state, chat messages' answers and
    commands waiting for a confirming reply."""

    # -- chat threads ---------------------------------------------------------------------

    async def bind_thread(
        self,
        connector: str,
        room: str,
        topic: str,
        thread_id: str,
        at: datetime | None = None,
    ) -> None:
        """Make ``thread_id`` the thread for ``topic`` in ``room``; the newest binding wins in
        both directions."""
        when = self._epoch(at)
        async with self._transaction(f"bind thread {thread_id}") as conn:
            await conn.execute(
                "DELETE FROM threads WHERE connector = ? AND room = ? AND thread_id = ?"
                " AND topic <> ?",
                (connector, room, thread_id, topic),
            )
            await conn.execute(
                "INSERT INTO threads (connector, room, topic, thread_id, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (connector, room, topic) DO UPDATE"
                " SET thread_id = excluded.thread_id, created_at = excluded.created_at"
                " WHERE threads.thread_id <> excluded.thread_id",
                (connector, room, topic, thread_id, when),
            )

    async def thread_for_topic(self, connector: str, room: str, topic: str) -> str | None:
        """The thread bound to ``topic`` in ``room``, if any."""
        row = await self._one(
            "SELECT thread_id FROM threads WHERE connector = ? AND room = ? AND topic = ?",
            (connector, room, topic),
        )
        return None if row is None else str(row[0])

    async def threads_for_topic(self, connector: str, topic: str) -> list[tuple[str, str]]:
        """Every (room, thread id) bound to ``topic`` on ``connector``, oldest first."""
        rows = await self._all(
            "SELECT room, thread_id FROM threads WHERE connector = ? AND topic = ? "
            "ORDER BY created_at, room",
            (connector, topic),
        )
        return [(str(row[0]), str(row[1])) for row in rows]

    async def topic_for_thread(self, connector: str, room: str, thread_id: str) -> str | None:
        """The topic ``thread_id`` in ``room`` is bound to, if any."""
        row = await self._one(
            "SELECT topic FROM threads WHERE connector = ? AND room = ? AND thread_id = ?",
            (connector, room, thread_id),
        )
        return None if row is None else str(row[0])

    # -- processed chat events ------------------------------------------------------------

    async def claim_event(self, connector: str, event_id: str, at: datetime | None = None) -> bool:
        """Whether this is the first time ``event_id`` is seen; redelivered events get False."""
        when = self._epoch(at)
        rows = await self._write(  # one statement: one trip
            "claim an event",
            "INSERT INTO processed_events (connector, event_id, at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            (connector, event_id, when),
        )
        return bool(rows)

    async def prune_events(self, before: datetime) -> int:
        """Forget events processed before ``before`` (and the answers to chat messages last
        handled before then); return how many events."""
        async with self._transaction("prune processed events") as conn:
            await conn.execute("DELETE FROM chat_answers WHERE at < ?", (to_epoch(before),))
            cursor = await conn.execute(
                "DELETE FROM processed_events WHERE at < ?", (to_epoch(before),)
            )
            return cursor.rowcount

    # -- connector state ------------------------------------------------------------------

    async def get_connector_state(self, connector: str, key: str) -> str | None:
        """A value a connector saved (a sync token, say), if any."""
        row = await self._one(
            "SELECT value FROM connector_state WHERE connector = ? AND key = ?", (connector, key)
        )
        return None if row is None else str(row[0])

    async def set_connector_state(
        self, connector: str, key: str, value: str, at: datetime | None = None
    ) -> None:
        """Save ``value`` under ``key`` for ``connector``, replacing any previous one."""
        when = self._epoch(at)
        await self._write(
            f"save {connector} state",
            "INSERT INTO connector_state (connector, key, value, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (connector, key) DO UPDATE"
            " SET value = excluded.value, updated_at = excluded.updated_at",
            (connector, key, value, when),
        )

    # -- answers ----------------------------------------------------------------------------

    async def claim_message(
        self,
        connector: str,
        event_id: str,
        *,
        sender: str,
        room: str,
        thread: str | None,
        at: datetime | None = None,
    ) -> bool:
        """Claim chat message ``event_id`` as :meth:`claim_event` does, and note it ``pending``;
        False (nothing written) when it was claimed before."""
        when = self._epoch(at)
        async with self._transaction("claim a chat message") as conn:
            cursor = await conn.execute(
                "INSERT INTO processed_events (connector, event_id, at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (connector, event_id, when),
            )
            if cursor.rowcount != 1:
                return False
            await conn.execute(
                _CLAIM_ANSWER,
                (connector, event_id, sender, room, thread, "pending", when),
            )
            return True

    async def settle_answer(
        self,
        connector: str,
        event_id: str,
        state: AnswerState,
        *,
        command: str | None = None,
        outcome: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record what came of chat message ``event_id`` (claimed before); no row, no change."""
        when = self._epoch(at)
        async with self._transaction("record a chat answer") as conn:
            await conn.execute(
                "UPDATE chat_answers SET state = ?, command = ?, outcome = ?, at = ?"
                " WHERE connector = ? AND event_id = ?",
                (state, command, outcome, when, connector, event_id),
            )

    async def chat_answer(self, connector: str, event_id: str) -> ChatAnswer | None:
        """What the bot did with chat message ``event_id``, if it has a record of it."""
        row = await self._one(
            "SELECT * FROM chat_answers WHERE connector = ? AND event_id = ?",
            (connector, event_id),
        )
        return None if row is None else ChatAnswer.from_row(row)

    async def take_over(self, connector: str, event_id: str, at: datetime | None = None) -> bool:
        """Make chat message ``event_id`` ``pending`` again for an edit to run, if nothing was
        done about it (``ignored`` or ``refused``); False when it ran, is pending, or has no
        record. Atomic: of two edits racing, one gets it."""
        when = self._epoch(at)
        async with self._transaction("take a chat message over") as conn:
            cursor = await conn.execute(
                "UPDATE chat_answers SET state = 'pending', at = ?"
                " WHERE connector = ? AND event_id = ? AND state IN ('ignored', 'refused')",
                (when, connector, event_id),
            )
            return cursor.rowcount == 1

    # -- confirmations ----------------------------------------------------------------------

    async def ask_confirmation(
        self,
        *,
        connector: str,
        sender: str,
        room: str,
        thread: str | None,
        command: str,
        summary: str,
        expires_at: datetime,
        plan: Mapping[str, object] | None = None,
    ) -> Confirmation:
        """Record a command waiting for ``sender``'s reply in this place; it replaces what
        they were asked there before. Rows long expired are dropped on the way. ``plan``:
        what the command decided as it asked (JSON-able), given back with the reply."""
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
                " asked_at, expires_at, host, plan) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    None if plan is None else json.dumps(plan),
                ),
            )
        return Confirmation(
            row_id, connector, sender, room, thread, command, summary, now, expires_at, host, plan
        )

    async def confirmations_at(
        self, connector: str, room: str, thread: str | None
    ) -> list[Confirmation]:
        """What waits in this place (expired ones still kept included), newest first."""
        since = to_epoch(self._clock.now() - KEPT_EXPIRED)
        rows = await self._all(
            "SELECT * FROM confirmations WHERE connector = ? AND room = ? AND thread IS ?"
            " AND expires_at >= ? ORDER BY id DESC",
            (connector, room, thread, since),
        )
        return [confirmation_from_row(row) for row in rows]

    async def take_confirmation(self, confirmation_id: int) -> bool:
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
