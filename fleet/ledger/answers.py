"""The ledger's ``chat_answers`` table (migration 12): what the bot did with each chat message
it claimed, so an edit of that message knows whether it may still replace it.

A message is claimed with :meth:`AnswersLedger.claim_message` (its processed-event id and its
``pending`` answer in one transaction), then settled as ``ignored`` (no command), ``refused``
(answered without running anything: it did not parse, or the sender may not run it) or
``ran`` (its command reached its handler), with the command's name and outcome. An edit
takes a message over (:meth:`AnswersLedger.take_over`) only from ``ignored`` or ``refused``,
atomically, so two edits never both run. The rows are pruned with the processed events
(:meth:`~fleet.ledger.chat.ChatLedger.prune_events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from fleet.ledger.access import Store
from fleet.ledger.engine import Row, replace_into
from fleet.ledger.rows import from_epoch

AnswerState = Literal["pending", "ignored", "refused", "ran"]
"""``pending``: being handled now; ``ignored``: no command, no answer; ``refused``: answered
without running anything; ``ran``: its command reached its handler."""

REPLACEABLE: tuple[AnswerState, ...] = ("ignored", "refused")
"""The states in which an edit still replaces the message: nothing was done about it."""


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """What the bot did with one chat message: where it was, who wrote it, and the state of
    its answer (with the command it ran or refused, and the outcome, once known)."""

    connector: str
    event_id: str
    sender: str
    room: str
    thread: str | None
    state: AnswerState
    command: str | None
    outcome: str | None
    at: datetime

    @classmethod
    def from_row(cls, row: Row) -> ChatAnswer:
        """Build from a row of ``chat_answers``."""
        return cls(
            connector=row["connector"],
            event_id=row["event_id"],
            sender=row["sender"],
            room=row["room"],
            thread=row["thread"],
            state=row["state"],
            command=row["command"],
            outcome=row["outcome"],
            at=from_epoch(row["at"]),
        )


_CLAIM_ANSWER: Final = replace_into(
    "chat_answers",
    ("connector", "event_id"),
    ("connector", "event_id", "sender", "room", "thread", "state", "at"),
    reset={"command": "NULL", "outcome": "NULL"},
)


class AnswersLedger:
    """Claims of chat messages with their answers, for edits to consult."""

    async def claim_message(
        self: Store,
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
        self: Store,
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

    async def chat_answer(self: Store, connector: str, event_id: str) -> ChatAnswer | None:
        """What the bot did with chat message ``event_id``, if it has a record of it."""
        row = await self._one(
            "SELECT * FROM chat_answers WHERE connector = ? AND event_id = ?",
            (connector, event_id),
        )
        return None if row is None else ChatAnswer.from_row(row)

    async def take_over(
        self: Store, connector: str, event_id: str, at: datetime | None = None
    ) -> bool:
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
