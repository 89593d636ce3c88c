"""A chat task's work up for a second agent's review: when its agent's run ends with a
change on a branch — or a live session's turn is over with commits pushed to its branch —
of a repository whose ``review:`` names a review agent (the task then ``review``,
:class:`fleet.tasks.runs.TaskRuns`), that agent is asked for the next round on the
branch's tip, once a commit (:meth:`fleet.peers.review.stage.ReviewStage.begin`). Its
``changes`` go back into the agent's session (``send``), or into its next run on the line
when it has none going, whose next end or turn over asks the next round; the approval
leaves the task for a human, saying the ``merge`` that lands it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fleet.ledger.records.tasks import TaskRecord
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.peers.reviews import ReviewsStore
from fleet.peers.review.handoff import UnderReview
from fleet.peers.review.stage import ReviewStage
from fleet.repos.facts import change_from_json
from fleet.repos.schema import ReviewPolicy

log = logging.getLogger(__name__)

Policy = Callable[[str], ReviewPolicy | None]
"""Who reviews a repository's work: its ``review:``, else its forge's (``None``: nobody)."""


Tip = Callable[[int], Awaitable[str | None]]
"""A line's branch tip as its agent pushed it (:meth:`fleet.repos.service.Repos.line_tip`)."""


class ChatReviews:
    """What hears a task asked in chat go up for review
    (:meth:`fleet.tasks.runs.TaskRuns.listen_for_review`)."""

    def __init__(
        self,
        *,
        stage: ReviewStage,
        lines: LinesStore,
        reviews: ReviewsStore,
        policy: Policy,
        tip: Tip,
    ) -> None:
        self._stage = stage
        self._lines = lines
        self._reviews = reviews
        self._policy = policy
        self._tip = tip

    async def up_for_review(self, task: TaskRecord, run_id: int) -> None:
        """``task`` is up for review after its run ``run_id``: ended with its change on a
        branch, or a live session's turn over with commits pushed to its branch. The next
        round of its repository's review, if it has one and that commit was not reviewed."""
        if task.source == "forge" or task.agent is None:
            return  # a forge run's round is asked when its done is published
        under = await self._under(task, task.agent, run_id)
        if under is None:
            return
        policy = self._policy(under.repo)
        if policy is None or policy.agent == task.agent:
            return
        if any(r.commit == under.commit for r in await self._reviews.of_task(task.id)):
            return  # that commit was reviewed already (a turn over, then the run's end)
        await self._stage.begin(under, policy)

    async def _under(self, task: TaskRecord, agent: str, run_id: int) -> UnderReview | None:
        """What a round of ``task`` reads: the ended run's change, else the agent's live
        line's pushed tip (a live session's turn over)."""
        change = change_from_json(await self._lines.run_change(run_id))
        if change is not None and change.head_sha is not None:
            lines = await self._lines.lines(repo=change.repo)
            line = next((x for x in lines if x.branch == change.branch), None)
            if line is None:
                log.warning("task %d's branch %s has no live line", task.id, change.branch)
                return None
            return UnderReview(
                task.id, agent, change.repo, line.id, change.branch, change.fork_sha,
                change.head_sha,
            )  # fmt: skip
        if change is not None:
            return None  # the run ended with nothing on its branch
        live = await self._lines.live_line(agent)
        if live is None or (task.repo is not None and live.repo != task.repo):
            return None
        tip = await self._tip(live.id)
        if tip is None or tip == live.fork_sha:
            return None  # nothing pushed on the branch yet
        return UnderReview(task.id, agent, live.repo, live.id, live.branch, live.fork_sha, tip)
