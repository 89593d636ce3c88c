"""What the ledger's chat store (:mod:`fleet.ledger.stores.operators.chat`) keeps of a chat message
and of a
command waiting for a confirming reply.

The ledger's ``chat_answers`` table (migration 12): a message is claimed with
:meth:`~fleet.ledger.stores.operators.chat.ChatStore.claim_message` (its processed-event id and its
``pending`` answer in one transaction), then settled as ``ignored`` (no command), ``refused``
(answered without running anything: it did not parse, or the sender may not run it) or
``ran`` (its command reached its handler), with the command's name and outcome. An edit
takes a message over (:meth:`~fleet.ledger.stores.operators.chat.ChatStore.take_over`) only from
``ignored``
or ``refused``, atomically, so two edits never both run. The rows are pruned with the
processed events (:meth:`~fleet.ledger.stores.operators.chat.ChatStore.prune_events`).

The ledger's ``confirmations`` table (migration 14): commands that wait for their asker's
confirming reply — ``freeze all``, ``stop all`` — in the place they were asked (connector,
room, thread), until a deadline.

The table, not memory, holds them: a restart keeps one that is still live, and an expired
one never acts. A row is taken (deleted) by the reply that confirms it, in one transaction
that checks the deadline, so two replies cannot both act. Expired rows stay for
:data:`KEPT_EXPIRED` only to tell a late reply why nothing happened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch

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
    plan: Mapping[str, object] | None = None  # what the command decided when it asked

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def confirmation_from_row(row: Row) -> Confirmation:
    """Build from a row of ``confirmations``."""
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
        plan=_plan(row["plan"]),
    )


def _plan(text: str | None) -> Mapping[str, object] | None:
    """A stored plan: a JSON object, else none (never one the ledger cannot read)."""
    if text is None:
        return None
    try:
        plan = json.loads(text)
    except ValueError:
        return None
    return plan if isinstance(plan, dict) else None
