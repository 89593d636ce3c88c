"""The review stage: a second agent reads a task's work before a human does.

When a task's run says done, :meth:`ReviewStage.begin` asks its review agent for a round:
recorded (``reviews``), the task ``review``, the agent launched through the one admission
— bound to the task, so its spend counts there, but never moving it
(:class:`fleet.tasks.runs.TaskRuns`) — in a read-only checkout of the line's commit of
its own, its prompt the task, the round and the change (:mod:`fleet.peers.review.words`).
The agent answers with ``fw-msg review approve|changes TEXT`` (:meth:`ReviewStage.verdict`,
the door's :class:`~fleet.peers.door.Verdicts`): recorded, and shown to the operator as a
message of kind ``review``. ``changes`` with rounds left goes back into the working
agent's session in the frame while its run goes on — else its next run on the same line
starts through the admission, bound to the task, the frame its prompt (its session resumed
where its runtime can) — and its next done begins the next round; ``changes`` that can go
neither way leave the task to a human, saying why and what they do next. ``approve``, or
the last round's ``changes``, hands the work to a human — on a forge its pull request made
ready (:class:`~fleet.peers.review.handoff.ForgeReviews`), in chat the task left for
review with the ``merge`` that lands it said (:mod:`fleet.peers.review.after`).

A review agent that cannot start (busy, refused, held) asks nothing — one busy with its
author's own work says so (:mod:`fleet.peers.review.busy`) — and one whose run ends
without a verdict answers nothing (:meth:`ReviewStage.hear`; at Fleetwarden's start,
:meth:`ReviewStage.sweep`, for a run that ended while it was away): its round ends, said,
and the work goes to a human as it would without a review. No round waits for its agent
to be free: a launch the admission would queue is taken out of the queue at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fleet.errors import FleetwardenError
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.peers import NewMessage, NewReview, ReviewRecord, ReviewState
from fleet.ledger.records.tasks import TaskRecord
from fleet.peers.errors import PeerRefusal
from fleet.peers.review.after import AfterVerdict, LineGone, not_started
from fleet.peers.review.busy import busy_with_author
from fleet.peers.review.changed import changed
from fleet.peers.review.handoff import (
    Admit,
    Diff,
    ForgeReviews,
    Heard,
    Launched,
    ReviewStores,
    Send,
    Stop,
    UnderReview,
)
from fleet.peers.review.rights import MayReview, refused_verdict
from fleet.peers.review.words import capped, framed_verdict, plain, review_prompt
from fleet.repos.line.review import LineDiff, ReviewCheckout
from fleet.repos.schema import ReviewPolicy
from fleet.supervisor.admission.request import LaunchRequest, Queued

log = logging.getLogger(__name__)

NOT_ASKED = "no review is asked of you: answer only when a review's prompt asks you to"


class ReviewStage:
    """Rounds of review, begun at a task's done and answered by the review agent's verdict."""

    def __init__(
        self,
        *,
        stores: ReviewStores,
        admit: Admit,
        diff: Diff,
        redact: Callable[[str], str],
        heard: Heard,
        send: Send,
        stop: Stop,
        forge: ForgeReviews | None = None,
        may_review: MayReview | None = None,
        launched: Launched | None = None,
    ) -> None:
        """``admit``: the one admission; ``diff``: a line's change; ``redact``: secrets out
        of a verdict; ``heard``: told of each verdict's message; ``send``: words into a chat
        task's agent; ``stop``: ends a review agent's run of an earlier round still going;
        ``forge``: a forge run's side (``None``: no forges); ``may_review``: asked when a
        verdict comes (:mod:`fleet.peers.review.rights`); ``launched``: waits for an agent's
        launch under way to be over (:meth:`fleet.tasks.runs.TaskRuns.launched`)."""
        self._stores = stores
        self._admit = admit
        self._diff = diff
        self._redact = redact
        self._heard = heard
        self._stop = stop
        self.forge = forge
        self._may_review = may_review
        self._launch_over = launched
        self._after = AfterVerdict(stores, admit, send, forge)
        self._locks: dict[str, asyncio.Lock] = {}

    async def begin(self, under: UnderReview, policy: ReviewPolicy) -> ReviewRecord | None:
        """Ask ``policy``'s agent for the next round on ``under``; the round asked, or
        ``None`` when none is (the rounds are used up or approved already: a human's now;
        or the agent could not start: the work went to a human, said)."""
        stores = self._stores
        earlier = await stores.reviews.of_task(under.task_id)
        for open_round in (r for r in earlier if r.state == "asked"):
            await stores.reviews.answer(open_round.id, "ended", "a later commit is reviewed")
        if any(r.state == "approved" and r.commit == under.commit for r in earlier):
            return None  # that very commit is approved: nothing new to read
        answered = [r for r in earlier if r.state in ("approved", "changes")]
        approved = answered[-1] if answered and answered[-1].state == "approved" else None
        done = len(answered)  # an approval of an earlier commit used its round too
        task = await stores.tasks.task(under.task_id)
        if task is None or not task.open:
            return None
        if approved is not None:  # a later commit than the one approved
            await changed(
                stores, self.forge, self._shown, approved, under, left=done < policy.rounds
            )
        if done >= policy.rounds:
            return None
        unread: str | None = None
        try:  # read before the round is recorded, so it is never asked on a change unread
            diff = await self._diff(under.line_id, under.base, under.commit)
        except FleetwardenError as exc:  # the line is gone, or git failed or took too long
            diff, unread = LineDiff(""), f"the change could not be read ({exc})"
        review = await stores.reviews.add_review(
            NewReview(
                task_id=under.task_id,
                coder=under.coder,
                reviewer=policy.agent,
                round=done + 1,
                rounds=policy.rounds,
                repo=under.repo,
                branch=under.branch,
                commit=under.commit,
                forge_run=under.forge_run,
            )
        )
        why = f"round {review.round} of {review.rounds}: {policy.agent} reviews {under.commit[:12]}"
        if approved is not None:
            why += f" (changed since it was approved at {approved.commit[:12]})"
        await stores.tasks.move(task.id, "review", why, came_from=("working", "review"))
        why_not: str | None = unread
        busy: str | None = None
        if unread is not None:
            log.warning("review of task %d not asked: %s", task.id, unread)
        elif policy.agent == under.coder:  # a forge issue given to the review agent itself
            why_not = f"{policy.agent} did this work itself, and never reviews its own work"
        else:
            why_not = await self._launched(under, policy, task, review, diff)
            if why_not is not None:  # its author keeps it at work: said as such
                busy = await busy_with_author(stores, policy.agent, under.coder)
                why_not = busy or why_not
        if why_not is not None:
            await stores.reviews.answer(review.id, "ended", why_not)
            log.info("review %d of task %d not asked: %s", review.id, task.id, why_not)
            said = why_not if busy else f"no review by {policy.agent}: {why_not}"
            ended = await stores.reviews.review(review.id) or review
            await self._after.to_humans(ended, said, approved=False, why=said)
            return None
        run = await stores.runs.last_run(policy.agent)
        if run is not None and run.id in (await self._runs_of(task.id)):
            await stores.reviews.bind_run(review.id, run.id)
            if run.ended_at is not None:  # it ended before its round was bound to it
                async with self._locks.setdefault(policy.agent, asyncio.Lock()):
                    why = f"{policy.agent}'s run {run.id} ended without a verdict"
                    await self._ended(review, why)
        return await stores.reviews.review(review.id) or review

    async def _launched(
        self,
        under: UnderReview,
        policy: ReviewPolicy,
        task: TaskRecord,
        review: ReviewRecord,
        diff: LineDiff,
    ) -> str | None:
        """``review``'s agent launched through the admission (its run of an earlier round
        of the task ended first); why it did not start now, or ``None``."""
        await self._earlier_run_over(policy.agent, task.runs)
        request = LaunchRequest(
            agent=policy.agent,
            origin="forge" if under.forge_run is not None else "review",
            by=f"review of task #{task.id}",
            prompt=review_prompt(task, review, diff),
            task=task.id,
            collect=False,
            review_of=ReviewCheckout(under.repo, under.line_id, under.commit, review.id),
        )
        try:
            admitted = await self._admit(request)
        except FleetwardenError as exc:  # its checkout could not be made, say
            return f"{policy.agent} could not start ({exc})"
        if isinstance(admitted, Queued) and not admitted.already and admitted.entry:
            # the round ends now: its launch must not start later, for nothing
            await self._stores.spawn_queue.cancel_spawn(admitted.entry.id)
        return not_started(policy.agent, admitted)

    async def verdict(self, reviewer: str, approve: bool, text: str) -> str:
        """``reviewer``'s verdict on the round it has open (:class:`PeerRefusal` when it has
        none); what becomes of it, in words for the reviewer. Only the run launched for
        that round answers it: never another run of the agent (working on something else,
        or an earlier round's), nor the agent that did the work. A verdict sent as soon as
        its run started waits for the launch to be over: its run is bound to its task then."""
        if self._launch_over is not None:
            await self._launch_over(reviewer)
        lock = self._locks.setdefault(reviewer, asyncio.Lock())
        async with lock:
            run = await self._stores.runs.last_run(reviewer)
            live = run is not None and run.ended_at is None
            review = await self._round_of(reviewer, run.id) if run is not None and live else None
            if review is None:
                raise PeerRefusal(NOT_ASKED)
            lost = None if self._may_review is None else await self._may_review(reviewer, review)
            if lost is not None:  # no longer its right: the work is a human's now
                kept = (self._stores.messages, self._redact, review, approve, text, lost)
                await self._shown(await refused_verdict(*kept))
                await self._ended(review, f"{reviewer}'s verdict was refused: {lost}")
                raise PeerRefusal(f"{lost}: your verdict is refused")
            task = await self._stores.tasks.task(review.task_id)
            if task is None or not task.open:  # done or cancelled meanwhile: nothing to do
                why = f"task #{review.task_id} is {task.state if task else 'gone'} now"
                await self._stores.reviews.answer(review.id, "ended", why)
                raise PeerRefusal(f"{why}: your verdict is not needed any more")
            said = capped(self._redact(plain(text)).strip()) or "(no words)"
            state: ReviewState = "approved" if approve else "changes"
            if not await self._stores.reviews.answer(review.id, state, said):
                raise PeerRefusal(f"review {review.id} was answered already")
            answered = await self._stores.reviews.review(review.id) or review
            message = await self._stores.messages.add_message(
                NewMessage(
                    sender=reviewer,
                    receiver=review.coder,
                    text=f"{state} (round {review.round} of {review.rounds}, commit "
                    f"{review.commit[:12]}): {said}",
                    kind="review",
                    sender_run=review.run_id,
                    task_id=review.task_id,
                )
            )
            framed = framed_verdict(answered, approve, said)
            try:
                if approve or answered.last_round:
                    words = await self._after.to_humans(answered, said, approved=approve)
                else:
                    words = await self._after.go_on(answered, framed)
            except FleetwardenError as exc:  # kept; the operator sees why it went no further
                if not approve and not answered.last_round and answered.forge_run is None:
                    await self._after.stalled(answered, str(exc), gone=isinstance(exc, LineGone))
                await self._stores.messages.refused(message.id, str(exc))
                await self._shown(message.id)
                return f"your verdict is kept, but it went no further: {exc}"
            await self._stores.messages.delivered(message.id, None)
            await self._shown(message.id)
            return words

    async def hear(self, event: FleetEvent) -> None:
        """A fleet event: a review agent's run that ended with its round still asked (it
        crashed, was stopped, or never answered) ends the round, and the work goes to a
        human, saying so."""
        if event.kind is not EventKind.ENDED or event.run_id is None:
            return
        lock = self._locks.setdefault(event.agent, asyncio.Lock())
        async with lock:
            review = await self._round_of(event.agent, event.run_id)
            if review is None or review.run_id not in (None, event.run_id):
                return  # none, or another run's (not yet bound: the launch's, this one)
            await self._ended(
                review, f"{review.reviewer}'s run {event.run_id} ended without a verdict"
            )

    async def sweep(self) -> int:
        """At Fleetwarden's start: each round still asked whose review agent's run ended
        while it was away — or whose launch it stopped in the middle of — ends, said, and
        its work goes to a human; a round whose run was reattached waits for its verdict
        or its end. How many ended."""
        ended = 0
        for review in await self._stores.reviews.asked():
            if review.run_id is None:
                run = await self._stores.runs.last_run(review.reviewer)
                live = run is not None and run.ended_at is None
                if run is not None and live and run.id in await self._runs_of(review.task_id):
                    await self._stores.reviews.bind_run(review.id, run.id)
                    continue
                why = f"Fleetwarden stopped while {review.reviewer}'s review was launched"
            else:
                report = await self._stores.runs.run_report(review.run_id)
                if report is not None and report.run.ended_at is None:
                    continue  # reattached: its verdict, or its end, is heard
                why = (
                    f"{review.reviewer}'s run {review.run_id} ended while Fleetwarden was "
                    "away, without a verdict"
                )
            try:
                async with self._locks.setdefault(review.reviewer, asyncio.Lock()):
                    ended += await self._ended(review, why)
            except Exception:  # the next start tries again; Fleetwarden starts all the same
                log.exception("review %d could not be ended at the start", review.id)
        return ended

    async def _ended(self, review: ReviewRecord, why: str) -> bool:
        """``review`` ended without a verdict (``why``), its work a human's; whether it
        was still asked."""
        if not await self._stores.reviews.answer(review.id, "ended", why):
            return False
        ended = await self._stores.reviews.review(review.id) or review
        try:
            await self._after.to_humans(ended, why, approved=False, why=why)
        except FleetwardenError as exc:
            log.warning("review %d: the work did not go to a human: %s", review.id, exc)
        return True

    async def _shown(self, message_id: int) -> None:
        found = await self._stores.messages.message(message_id)
        if found is not None:
            try:
                await self._heard(found)
            except Exception:  # the operator's surfaces are news: the verdict stands
                log.exception("the verdict of message %d was not shown", message_id)

    async def _earlier_run_over(self, reviewer: str, runs: tuple[int, ...]) -> None:
        """The review agent's run of an earlier round of the task, when it still goes (a
        live session waits for its next turn), ended: this round reads another commit."""
        run = await self._stores.runs.last_run(reviewer)
        if run is not None and run.ended_at is None and run.id in runs:
            await self._stop(reviewer, "its next round of review")

    async def _round_of(self, reviewer: str, run_id: int) -> ReviewRecord | None:
        """The round still asked of ``reviewer``'s run ``run_id``: of the task the run is
        bound to, bound to the run — or not yet (its launch is under way) when the run is
        no earlier round's — never one of the agent's own work. So a verdict answers the
        round its run was launched for: no other task's round asked of the same agent
        meanwhile, and no later round of the task, on a commit its run never read."""
        task_id = await self._stores.tasks.task_of_run(run_id)
        if task_id is None:
            return None
        rounds = await self._stores.reviews.of_task(task_id)
        earlier = run_id in {r.run_id for r in rounds}
        asked = [
            r
            for r in rounds
            if r.state == "asked" and r.reviewer == reviewer != r.coder
            and (r.run_id == run_id or (r.run_id is None and not earlier))
        ]  # fmt: skip
        return asked[-1] if asked else None

    async def _runs_of(self, task_id: int) -> tuple[int, ...]:
        task = await self._stores.tasks.task(task_id)
        return task.runs if task is not None else ()
