"""Messages between agents and reviews by a second agent as the ledger keeps them
(``messages``, ``reviews``, migration 29). How a message is sent, framed and delivered, and
how a review goes round, is :mod:`fleet.peers`'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

MessageKind = Literal["message", "task", "review"]
"""What a message was: words to a peer, work handed on as a task, a review's verdict."""
MessageState = Literal["queued", "delivered", "refused"]
"""Waiting for the receiver's turn to end, in its session (ACCEPTED), or refused (why)."""

ReviewState = Literal["asked", "approved", "changes", "ended"]
"""A round of review: waiting for the reviewer's verdict, its verdict, or ended without one."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """What a message is recorded with. ``text`` is redacted before it is given here;
    ``why`` says why it was refused (``state`` ``refused``)."""

    sender: str
    receiver: str
    text: str
    kind: MessageKind = "message"
    state: MessageState = "queued"
    why: str = ""
    sender_run: int | None = None
    task_id: int | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message as the ledger keeps it: who sent it to whom, what it said (redacted),
    and its receipt — ``queued``, ``delivered`` (into ``delivered_run``, at
    ``delivered_at``) or ``refused`` (``why``)."""

    id: int
    sender: str
    receiver: str
    kind: MessageKind
    text: str
    state: MessageState
    why: str
    sender_run: int | None
    task_id: int | None
    sent_at: datetime
    delivered_at: datetime | None
    delivered_run: int | None


@dataclass(frozen=True, slots=True)
class NewReview:
    """A round of review asked of ``reviewer`` on ``coder``'s work for task ``task_id``:
    its line (``repo``, ``branch``) at ``commit``, round ``round`` of ``rounds``."""

    task_id: int
    coder: str
    reviewer: str
    round: int
    rounds: int
    repo: str = ""
    branch: str = ""
    commit: str = ""
    forge_run: int | None = None


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """One round of review as the ledger keeps it (see :class:`NewReview`): its ``state``,
    the reviewer's ``verdict`` in its own words (redacted), its reviewer's ``run_id``."""

    id: int
    task_id: int
    coder: str
    reviewer: str
    round: int
    rounds: int
    repo: str
    branch: str
    commit: str
    forge_run: int | None
    run_id: int | None
    state: ReviewState
    verdict: str
    asked_at: datetime
    answered_at: datetime | None

    @property
    def last_round(self) -> bool:
        """Whether no round may follow this one."""
        return self.round >= self.rounds
