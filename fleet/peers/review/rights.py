"""Whether a review agent may still give its verdict on the round asked of it — read when
the verdict comes, from the roster and the review agent its repository (or forge) names as
they are then — and the record of a verdict refused for that: a message of kind ``review``
kept ``refused`` with why, told in both agents' threads as every message is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fleet.ledger.records.peers import NewMessage, ReviewRecord
from fleet.ledger.stores.peers.messages import MessagesStore
from fleet.peers.review.words import capped, plain

MayReview = Callable[[str, ReviewRecord], Awaitable[str | None]]
"""Why a reviewer may not give its verdict on a round now, or ``None``
(:meth:`fleet.peers.rules.Rules.may_review` over the review agent named now)."""


async def refused_verdict(
    messages: MessagesStore,
    redact: Callable[[str], str],
    review: ReviewRecord,
    approve: bool,
    text: str,
    why: str,
) -> int:
    """Record ``review``'s verdict (``approve``, ``text``) refused, saying ``why``; its
    message's id."""
    said = capped(redact(plain(text)).strip()) or "(no words)"
    state = "approved" if approve else "changes"
    message = await messages.add_message(
        NewMessage(
            sender=review.reviewer,
            receiver=review.coder,
            text=f"{state} (round {review.round} of {review.rounds}): {said}",
            kind="review",
            state="refused",
            why=redact(f"verdict refused: {why}"),
            sender_run=review.run_id,
            task_id=review.task_id,
        )
    )
    return message.id
