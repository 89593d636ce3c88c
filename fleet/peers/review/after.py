"""What follows a review's verdict: ``changes`` with rounds left taken back to the working
agent — into its session while its run goes on, else its next run on the same line through
the one admission — or, when they can go neither way, the task left to a human saying what
they do next; an approval, or the last round's ``changes``, hands the work to a human (on a
forge its pull request made ready, in chat the task left for review with the ``merge`` that
lands it). The rounds themselves are :mod:`fleet.peers.review.stage`'s."""

from __future__ import annotations

from fleet.errors import FleetError, FleetwardenError
from fleet.ledger.records.peers import ReviewRecord
from fleet.peers.review.changed import lands
from fleet.peers.review.handoff import Admit, ForgeReviews, ReviewStores, Send
from fleet.supervisor.admission.request import Admitted, LaunchRequest, Queued, Started


class LineGone(FleetError):
    """The branch under review is no longer its coder's live line (merged or discarded):
    its next run would cut a new one, so none starts."""


class AfterVerdict:
    """Where a verdict sends the work: back to its agent, or to a human."""

    def __init__(
        self, stores: ReviewStores, admit: Admit, send: Send, forge: ForgeReviews | None
    ) -> None:
        """``admit``: the one admission; ``send``: words into a chat task's agent;
        ``forge``: a forge run's side (``None``: no forges)."""
        self._stores = stores
        self._admit = admit
        self._send = send
        self.forge = forge

    async def go_on(self, review: ReviewRecord, framed: str) -> str:
        """``changes`` with rounds left: the frame into the working agent's session while
        its run goes on, else its next run on the same line with the frame as its prompt
        (:meth:`_next_run`); :class:`FleetwardenError` saying why when neither can be."""
        if review.forge_run is not None and self.forge is not None:
            return await self.forge.go_on(review, framed)
        run = await self._stores.runs.last_run(review.coder)
        if run is None or run.ended_at is not None:
            return await self._next_run(review, framed, run.id if run is not None else None)
        await self._send(review.coder, framed)
        why = (
            f"{review.reviewer} asked for changes (round {review.round} of "
            f"{review.rounds}): {review.coder} works on them"
        )
        await self._stores.tasks.move(review.task_id, "working", why, came_from=("review",))
        return (
            f"your verdict went to {review.coder} (round {review.round} of {review.rounds}); "
            "you review its next commit when it says done"
        )

    async def _next_run(self, review: ReviewRecord, framed: str, last: int | None) -> str:
        """The coder has no session going (a ``command`` or stub agent, a headless run that
        ended): its next run on the branch under review, through the one admission, bound
        to the task, the frame its prompt — its last session resumed when that was the
        task's and its runtime can. The run's start moves the task to ``working``
        (:class:`fleet.tasks.runs.TaskRuns`) and its done asks the next round."""
        coder, stores = review.coder, self._stores
        if stores.lines is not None:
            line = await stores.lines.live_line(coder)
            if line is None or line.repo != review.repo or line.branch != review.branch:
                raise LineGone(f"{review.branch} is no longer {coder}'s branch")
        task = await stores.tasks.task(review.task_id)
        request = LaunchRequest(
            agent=coder,
            origin="review",
            by=f"review {review.id} by {review.reviewer}",
            prompt=framed,
            repo=review.repo,
            task=review.task_id,
            collect=False,
            resume=task is not None and last is not None and last in task.runs,
        )
        try:
            admitted = await self._admit(request)
        except FleetwardenError as exc:  # its checkout, its runtime: said
            raise FleetError(f"{coder}'s next run could not start ({exc})") from None
        if isinstance(admitted, Queued) and not admitted.already and admitted.entry:
            # said now, for a human to start: a launch waiting unseen would surprise
            await stores.spawn_queue.cancel_spawn(admitted.entry.id)
        why_not = not_started(coder, admitted)
        if why_not is not None:
            raise FleetError(f"its next run did not start: {why_not}")
        why = (
            f"{review.reviewer} asked for changes (round {review.round} of {review.rounds}): "
            f"{coder} works on them in its next run on {review.branch}"
        )
        await stores.tasks.move(review.task_id, "working", why, came_from=("working",))
        return (
            f"your verdict went to {coder}'s next run on {review.branch} (round "
            f"{review.round} of {review.rounds}); you review its next commit when it says done"
        )

    async def stalled(self, review: ReviewRecord, why: str, *, gone: bool) -> None:
        """``changes`` a chat task's agent could not take up (``why``): the task a
        human's, saying what they do next — never still waiting for a round. Its next done
        asks the next round, when ``task start`` runs it again."""
        task = await self._stores.tasks.task(review.task_id)
        if task is None or not task.open:
            return
        then = (  # ``gone``: its branch merged or discarded, nothing left to land
            f"runs {review.coder} again on a new branch"
            if gone
            else f"runs {review.coder} again; {await lands(self._stores, review)} as it is"
        )
        said = (  # what a human does last: a long reason is cut in its middle when shown
            f"round {review.round} of {review.rounds}: {review.reviewer}'s changes went no "
            f"further ({why}) — `task start {task.id}` {then}"
        )
        await self._stores.tasks.move(
            task.id, "review", said, came_from=("review", "working", "queued", "todo")
        )

    async def to_humans(
        self, review: ReviewRecord, verdict: str, *, approved: bool, why: str = ""
    ) -> str:
        """The work for a human now: on a forge its pull request made ready, in chat the
        task left for review, saying how it lands (``why``: what the task says, when it is
        not the verdict's own round)."""
        if review.forge_run is not None and self.forge is not None:
            return await self.forge.ready(review, verdict, approved=approved)
        if not why and approved:
            why = f"approved by {review.reviewer} at {review.commit[:12]}"
        elif not why:
            why = f"{review.reviewer}'s rounds are over (round {review.round} asked for changes)"
        said = f"{why}: a human reviews it now; {await lands(self._stores, review)}"
        await self._stores.tasks.move(review.task_id, "review", said, came_from=("review",))
        return f"noted: task #{review.task_id} goes to a human now ({why})"


def not_started(agent: str, admitted: Admitted) -> str | None:
    """Why ``agent``'s review run did not start now, or ``None`` when it did."""
    if isinstance(admitted, Started):
        if admitted.outcome.started:
            return None
        return f"{agent} was already running"
    if isinstance(admitted, Queued):
        return f"{agent} could not start now ({admitted.why})"
    return f"{agent} could not start ({admitted.why})"
