"""The chat bookkeeping a connector and the router keep in the ledger: which thread holds
which topic (an agent) in which room, which chat events were already handled, and small
values a connector saves between runs (a sync token).

These tables are about conversations, not the fleet; they share the one ledger file so a
write is one transaction with the rest. :class:`ChatLedger` is mixed into
:class:`~fleet.ledger.store.Ledger` and uses its transaction and read helpers.
"""

from __future__ import annotations

from datetime import datetime

from fleet.ledger.access import Store
from fleet.ledger.rows import to_epoch


class ChatLedger:
    """Threads per topic, processed chat events and connector state."""

    # -- chat threads ---------------------------------------------------------------------

    async def bind_thread(
        self: Store,
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

    async def thread_for_topic(self: Store, connector: str, room: str, topic: str) -> str | None:
        """The thread bound to ``topic`` in ``room``, if any."""
        row = await self._one(
            "SELECT thread_id FROM threads WHERE connector = ? AND room = ? AND topic = ?",
            (connector, room, topic),
        )
        return None if row is None else str(row[0])

    async def threads_for_topic(self: Store, connector: str, topic: str) -> list[tuple[str, str]]:
        """Every (room, thread id) bound to ``topic`` on ``connector``, oldest first."""
        rows = await self._all(
            "SELECT room, thread_id FROM threads WHERE connector = ? AND topic = ? "
            "ORDER BY created_at, room",
            (connector, topic),
        )
        return [(str(row[0]), str(row[1])) for row in rows]

    async def topic_for_thread(
        self: Store, connector: str, room: str, thread_id: str
    ) -> str | None:
        """The topic ``thread_id`` in ``room`` is bound to, if any."""
        row = await self._one(
            "SELECT topic FROM threads WHERE connector = ? AND room = ? AND thread_id = ?",
            (connector, room, thread_id),
        )
        return None if row is None else str(row[0])

    # -- processed chat events ------------------------------------------------------------

    async def claim_event(
        self: Store, connector: str, event_id: str, at: datetime | None = None
    ) -> bool:
        """Whether this is the first time ``event_id`` is seen; redelivered events get False."""
        when = self._epoch(at)
        async with self._transaction("claim an event") as conn:
            cursor = await conn.execute(
                "INSERT INTO processed_events (connector, event_id, at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (connector, event_id, when),
            )
            return cursor.rowcount == 1

    async def prune_events(self: Store, before: datetime) -> int:
        """Forget events processed before ``before`` (and the answers to chat messages last
        handled before then); return how many events."""
        async with self._transaction("prune processed events") as conn:
            await conn.execute("DELETE FROM chat_answers WHERE at < ?", (to_epoch(before),))
            cursor = await conn.execute(
                "DELETE FROM processed_events WHERE at < ?", (to_epoch(before),)
            )
            return cursor.rowcount

    # -- connector state ------------------------------------------------------------------

    async def get_connector_state(self: Store, connector: str, key: str) -> str | None:
        """A value a connector saved (a sync token, say), if any."""
        row = await self._one(
            "SELECT value FROM connector_state WHERE connector = ? AND key = ?", (connector, key)
        )
        return None if row is None else str(row[0])

    async def set_connector_state(
        self: Store, connector: str, key: str, value: str, at: datetime | None = None
    ) -> None:
        """Save ``value`` under ``key`` for ``connector``, replacing any previous one."""
        when = self._epoch(at)
        async with self._transaction(f"save {connector} state") as conn:
            await conn.execute(
                "INSERT INTO connector_state (connector, key, value, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (connector, key) DO UPDATE"
                " SET value = excluded.value, updated_at = excluded.updated_at",
                (connector, key, value, when),
            )
