"""A chat task's work up for a second agent's review: when its agent's run ends with a
change on a branch of a repository whose ``review:`` names a review agent (the task then
``review``, :class:`fleet.tasks.runs.TaskRuns`), that agent is asked for the next round on
the branch's tip (:meth:`fleet.peers.review.stage.ReviewStage.begin`). Its ``changes`` go
back into the agent's session (``send``), whose next run's end asks the next round; the
approval leaves the task for a human, saying the ``merge`` that lands it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fleet.ledger.records.tasks import TaskRecord
from fleet.ledger.stores.code.lines import LinesStore
from fleet.peers.review.handoff import UnderReview
from fleet.peers.review.stage import ReviewStage
from fleet.repos.facts import change_from_json
from fleet.repos.schema import ReviewPolicy

log = logging.getLogger(__name__)

Policy = Callable[[str], ReviewPolicy | None]
"""Who reviews a repository's work: its ``review:``, else its forge's (``None``: nobody)."""


class ChatReviews:
    """:attr:`fleet.tasks.runs.TaskRuns.up_for_review` for tasks asked in chat."""

    def __init__(self, *, stage: ReviewStage, lines: LinesStore, policy: Policy) -> None:
        self._stage = stage
        self._lines = lines
        self._policy = policy

    async def up_for_review(self, task: TaskRecord, run_id: int) -> None:
        """``task``'s run ``run_id`` ended with its change on a branch: the next round of
        its repository's review, if it has one."""
        if task.source == "forge" or task.agent is None:
            return  # a forge run's round is asked when its done is published
        change = change_from_json(await self._lines.run_change(run_id))
        if change is None or change.head_sha is None:
            return
        policy = self._policy(change.repo)
        if policy is None or policy.agent == task.agent:
            return
        lines = await self._lines.lines(repo=change.repo)
        line = next((x for x in lines if x.branch == change.branch), None)
        if line is None:
            log.warning("task %d's branch %s has no live line to review", task.id, change.branch)
            return
        under = UnderReview(
            task.id, task.agent, change.repo, line.id, change.branch, change.fork_sha,
            change.head_sha,
        )  # fmt: skip
        await self._stage.begin(under, policy)
