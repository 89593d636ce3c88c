"""A line changed since it was approved: a commit after the one its review agent approved,
with no round of review left to read it (:meth:`fleet.peers.review.stage.ReviewStage.begin`
asks the next round while rounds are left). The approval stays of its commit — ``merge``
and ``push`` refuse the tip (:mod:`fleet.repos.landing.approval`) — and everyone is told:
the task says which commit was approved and that its tip is not, both agents' threads show
it (a review message, refused: the approval does not cover the tip), and on a forge its
pull request is held from merging (:meth:`~fleet.peers.review.handoff.ForgeReviews.changed`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fleet.errors import FleetwardenError
from fleet.ledger.records.peers import NewMessage, ReviewRecord
from fleet.peers.review.handoff import ForgeReviews, ReviewStores, UnderReview
from fleet.repos.landing.approval import standing

log = logging.getLogger(__name__)


def changed_words(approved: ReviewRecord, tip: str) -> str:
    """What a line whose tip ``tip`` came after the commit ``approved`` approved, with no
    round left, says."""
    return (
        f"changed since it was approved: {approved.reviewer} approved commit "
        f"{approved.commit[:12]} (round {approved.round} of {approved.rounds}), its tip "
        f"{tip[:12]} is not reviewed and no round of review is left"
    )


async def changed(
    stores: ReviewStores,
    forge: ForgeReviews | None,
    shown: Callable[[int], Awaitable[None]],
    approved: ReviewRecord,
    under: UnderReview,
    *,
    left: bool,
) -> None:
    """``under``'s commit came after the one ``approved`` approved: on a forge, its pull
    request held from merging; with no round ``left`` to read it, the line marked changed
    since it was approved (see the module). ``shown``: tells the operator's surfaces of a
    message by its id."""
    if under.forge_run is not None and forge is not None:
        try:
            await forge.changed(approved, under.commit)
        except FleetwardenError as exc:  # said in chat all the same
            log.warning("review %d: the pull request was not held: %s", approved.id, exc)
    if left:
        return  # the next round reads it: its task says so, and only its approval lands it
    said = changed_words(approved, under.commit)
    log.info("task %d: %s", under.task_id, said)
    if under.forge_run is None:
        why = (  # short: `task T` shows the first 160 characters
            f"changed since it was approved ({approved.reviewer} approved "
            f"{approved.commit[:12]}; tip {under.commit[:12]}, no round left): an admin's "
            f"`merge --unreviewed {under.branch}` lands it"
        )
        await stores.tasks.move(under.task_id, "review", why, came_from=("review", "working"))
    message = await stores.messages.add_message(
        NewMessage(
            sender=approved.reviewer,
            receiver=under.coder,
            text=f"approved (round {approved.round} of {approved.rounds}, commit "
            f"{approved.commit[:12]}): {approved.verdict}",
            kind="review",
            state="refused",
            why=f"{said}; its approval does not cover it",
            task_id=under.task_id,
        )
    )
    await shown(message.id)


async def lands(stores: ReviewStores, review: ReviewRecord) -> str:
    """How ``review``'s work lands, now it is a human's: its ``merge`` — or, when an
    approval of another commit still stands (this round gave no verdict on its own), an
    admin's ``merge --unreviewed``, as ``merge`` itself says."""
    held = standing(await stores.reviews.of_task(review.task_id))
    if held is None or held.commit == review.commit:
        return f"`merge {review.branch}` lands it"
    return (
        f"{held.reviewer} approved {held.commit[:12]}, not {review.commit[:12]}: an admin's "
        f"`merge --unreviewed {review.branch}` lands it"
    )
