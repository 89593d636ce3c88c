"""What a round of review hands on, and to whom: :class:`UnderReview` (the work a round
reads: its task, its agent, its line at one commit) and :class:`ForgeReviews`, the forge's
side of a review — the verdict back into the forge run, or the pull request made ready for
humans — which :mod:`fleet.forge` implements (the forge imports the peers, never the
other way round)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from fleet.ledger.records.peers import MessageRecord, ReviewRecord
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.peers.messages import MessagesStore
from fleet.ledger.stores.peers.reviews import ReviewsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.running.spawn_queue import SpawnQueueStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.repos.line.review import LineDiff
from fleet.supervisor.admission.request import Admitted, LaunchRequest

Admit = Callable[[LaunchRequest], Awaitable[Admitted]]
"""The one admission every launch goes through (:meth:`fleet.supervisor.admission.admit.
Admission.admit`): the review agent's run is launched, queued or refused by it."""
Diff = Callable[[int, str, str], Awaitable[LineDiff]]
"""A line's change from a base to a commit (:meth:`fleet.repos.service.Repos.line_diff`)."""
Heard = Callable[[MessageRecord], Awaitable[None]]
"""Told of each verdict's message row, so the operator's surfaces show it."""
Send = Callable[[str, str], Awaitable[object]]
"""Words into an agent's session (chat's ``send``: :meth:`fleet.supervisor.fleet.Fleet.send`)."""

Stop = Callable[[str, str], Awaitable[object]]
"""Ends an agent's run, saying by what (a review agent's run of an earlier round)."""
Launched = Callable[[str], Awaitable[None]]
"""Waits until an agent's launch under way, if any, is over (its run bound to its task)."""


@dataclass(frozen=True, slots=True)
class UnderReview:
    """The work a round of review reads: task ``task_id`` done by ``coder`` on line
    ``line_id`` of ``repo`` (branch ``branch``), from ``base`` to ``commit``; its forge run,
    when a forge issue made it."""

    task_id: int
    coder: str
    repo: str
    line_id: int
    branch: str
    base: str
    commit: str
    forge_run: int | None = None


@dataclass(frozen=True, slots=True)
class ReviewStores:
    """The ledger's stores a review keeps its rounds, messages and task in; the spawn
    queue, which a launch for a review that would wait is taken out of (its round ends
    then); the lines, where a coder's next run must find the branch under review still its
    own (``None``: not checked)."""

    reviews: ReviewsStore
    messages: MessagesStore
    tasks: TasksStore
    runs: RunsStore
    spawn_queue: SpawnQueueStore
    lines: LinesStore | None = None


class ForgeReviews(Protocol):
    """A review's effects on a forge run (:class:`fleet.forge.runs.reviewing.ForgeReviewing`)."""

    async def go_on(self, review: ReviewRecord, framed: str) -> str:
        """``framed`` (the verdict in its frame) into the forge run's agent: its session
        continued on the line, or its next run there; the words for the review agent."""
        ...

    async def ready(self, review: ReviewRecord, verdict: str, *, approved: bool) -> str:
        """The pull request ready for a human: a review on it saying ``verdict`` (redacted
        already) is the review agent's, not a human's, at ``review``'s commit; its draft
        flag lifted; its status comment saying who approved. The words for the review
        agent."""
        ...

    async def changed(self, approved: ReviewRecord, tip: str) -> None:
        """The pull request's head ``tip`` came after the commit ``approved`` approved,
        with no round left: it is held from merging (a draft again), its status comment
        saying which commit was approved and that its head is not."""
        ...
