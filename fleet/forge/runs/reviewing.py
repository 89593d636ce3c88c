"""A forge run under review by a second agent (the forge's side of
:mod:`fleet.peers.review`): who reviews a run's work (its repository's ``review:``, else its
forge's), its pull request opened as a draft while an agent reviews it, a round asked once
its ``done ok`` is published (its branch pushed, its pull request open: the run
``waiting``), and what a verdict does on the forge — ``changes`` continue the run as a
person's review would (:meth:`fleet.forge.runs.onward.Onward.go_on`: its session, or its
next run on the line; its next ``done`` asks the next round); ``approve``, or the last
round's ``changes``, post the review agent's review on the pull request — its words
defused, saying it is that agent's verdict and not a human's, at which commit, with the
provenance footer — lift its draft flag, and say who approved in its status comment.

A person's review or comment meanwhile continues the run as it always does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol, runtime_checkable

from fleet.errors import FleetError, FleetwardenError
from fleet.forge.launcher import ForgeLauncher
from fleet.forge.model import ForgeApi, ForgeApiError
from fleet.forge.posts.publish import Publisher
from fleet.forge.runs.onward import Onward
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState, Slug
from fleet.ledger.records.peers import ReviewRecord
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.peers.review.handoff import UnderReview
from fleet.peers.review.stage import ReviewStage
from fleet.repos.landing.approval import Unapproved
from fleet.repos.schema import RepoEntry, ReviewPolicy

log = logging.getLogger(__name__)


@runtime_checkable
class ReviewApi(Protocol):
    """What a review agent's verdict needs of a forge's API: a review on a pull request,
    and its draft flag lifted (GitHub's GraphQL, a Gitea's WIP title)."""

    async def review(self, repo: Slug, number: int, body: str, *, event: str = "COMMENT") -> str:
        """Post a review of pull request ``number``; its address."""
        ...

    async def ready_for_review(self, repo: Slug, number: int) -> None:
        """Take pull request ``number`` out of draft."""
        ...


@runtime_checkable
class DraftApi(Protocol):
    """A forge API that makes a pull request a draft again (GitHub's GraphQL, a Gitea's
    WIP title): one the forge merges for no one."""

    async def to_draft(self, repo: Slug, number: int) -> None:
        """Make pull request ``number`` a draft again."""
        ...


class Work(Protocol):
    """Forge work (:class:`fleet.forge.runs.work.ForgeWork`), as a review's verdict acts
    through it: the forges and their APIs, the forge runs, the fleet, the posts, a run
    going on (``onward``), an issue's lock and its background work."""

    forges: Mapping[str, ForgeEntry]
    apis: Mapping[str, ForgeApi]
    forge: ForgeStore
    launcher: ForgeLauncher
    publisher: Publisher
    onward: Onward

    def lock(self, forge: str, slug: Slug, number: int) -> asyncio.Lock: ...

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> None: ...


class ForgeReviewing:
    """The review stage's :class:`~fleet.peers.review.handoff.ForgeReviews` over forge
    runs. The stage is made after it (it takes this as its forge side): ``stage`` answers
    it once it is made (``None`` until then: no run is reviewed)."""

    def __init__(
        self,
        work: Work,
        *,
        repos: Mapping[str, RepoEntry],
        stage: Callable[[], ReviewStage | None],
    ) -> None:
        """``repos``: the repositories, whose ``review:`` says who reviews their runs' work
        (else their forge's); ``stage``: the review stage, once it is made (the app's
        registry of desks)."""
        self._forges = work.forges
        self._repos = repos
        self._apis = work.apis
        self._forge = work.forge
        self._launcher = work.launcher
        self._onward = work.onward
        self._publisher = work.publisher
        self._lock = work.lock
        self._spawn = work.spawn
        self._stage = stage

    def policy(self, record: ForgeRunRecord) -> ReviewPolicy | None:
        """Who reviews ``record``'s work: its repository's ``review:``, else its forge's."""
        forge = self._forges.get(record.forge)
        fallback = forge.review if forge is not None else None
        entry = self._repos.get(record.repo)
        return entry.review_of(fallback) if entry is not None else fallback

    def reviewed(self, record: ForgeRunRecord) -> bool:
        """Whether an agent reviews ``record``'s work (its pull request opens as a draft)."""
        return self._stage() is not None and self.policy(record) is not None

    async def published(self, key: int, commit: str) -> None:
        """Forge run ``key``'s ``done ok`` is published, its pull request's head at
        ``commit``: ask its review agent for the next round on the commit its line says
        was pushed (else ``commit``); none when its repository has no review, or its
        rounds are over."""
        record = await self._forge.forge_run(key)
        policy = None if record is None else self.policy(record)
        stage = self._stage()
        if record is None or policy is None or stage is None:
            return
        if ForgeRunState(record.state) is not ForgeRunState.WAITING:
            return
        line = await self._launcher.line(record.agent, record.line_id)
        task = await self._publisher.task_of(record)
        if line is None or task is None:
            log.warning("forge run %d has no line or task to review", key)
            return
        commit = line.pushed_sha or commit  # what was pushed, as the line keeps it
        under = UnderReview(
            task, record.agent, record.repo, line.id, record.branch, line.fork_sha, commit, key
        )
        review = await stage.begin(under, policy)
        if review is not None:
            said = f"review {review.id}: {policy.agent} reviews {commit[:12]}"
            said += f" (round {review.round} of {review.rounds})"
            await self._forge.audit_forge(key, policy.agent, "review", True, said)
            await self._publisher.refresh(key)

    async def go_on(self, review: ReviewRecord, framed: str) -> str:
        """``changes``: the framed verdict continues the forge run, in the background (a
        turn under way ends first); the words for the review agent."""
        run = await self._run_of(review)
        self._spawn(self._continued(run.id, review, framed), f"review {review.id} of run {run.id}")
        return (
            f"your verdict goes to {review.coder} on {run.branch} (round {review.round} of "
            f"{review.rounds}); you review its next commit once it says done again"
        )

    async def _continued(self, key: int, review: ReviewRecord, framed: str) -> None:
        run = await self._forge.forge_run(key)
        if run is None:
            return
        async with self._lock(run.forge, run.slug, run.issue):
            run = await self._forge.forge_run(key)
            if run is None or ForgeRunState(run.state).is_over:
                return  # ended meanwhile: nothing to go on with
            who = f"review agent {review.reviewer}"
            try:
                await self._onward.go_on(
                    run, framed, by=who, requester=who, how=f"review {review.id} by {who}",
                    where=run.pull or run.issue,
                )  # fmt: skip
            except FleetwardenError as exc:  # kept in the audit and said in its status
                said = f"review {review.id}'s changes not taken up: {exc}"
                await self._forge.audit_forge(key, review.reviewer, "review", False, said)
                await self._publisher.refresh(key)

    async def ready(self, review: ReviewRecord, verdict: str, *, approved: bool) -> str:
        """The pull request ready for a human: the review agent's review posted on it, its
        draft flag lifted, its status comment saying so; the words for the review agent."""
        run = await self._run_of(review)
        if ForgeRunState(run.state).is_over:  # stopped, merged or closed meanwhile
            said = f"review {review.id} by {review.reviewer} not posted: the run is {run.state}"
            await self._forge.audit_forge(run.id, review.reviewer, "review", False, said)
            raise FleetError(
                f"forge run {run.id} is {run.state}: its pull request is left as it is"
            )
        if run.pull is None:
            raise FleetError(f"forge run {run.id} has no pull request to review")
        api = self._apis[run.forge]
        if not isinstance(api, ReviewApi):
            raise FleetError(f"forge {run.forge}'s API cannot post a review")
        said = self.review_body(run, review, verdict, approved)
        body = await self._publisher.posts.signed(run, said)
        try:
            url = await api.review(run.slug, run.pull, body, event="COMMENT")
            await api.ready_for_review(run.slug, run.pull)
        except ForgeApiError as exc:
            log.warning("review %d on %s#%d: %s", review.id, run.slug, run.pull, exc)
            raise FleetError(f"the forge refused the review on #{run.pull}") from None
        how = "approved" if approved else f"no approval in round {review.round}"
        said = f"review {review.id} by {review.reviewer}: {how} at {review.commit[:12]}"
        await self._forge.audit_forge(run.id, review.reviewer, "review", True, said)
        await self._publisher.refresh(run.id)
        return f"your review is on pull request #{run.pull} ({url}); it is a human's now"

    async def changed(self, approved: ReviewRecord, tip: str) -> None:
        """The pull request's head ``tip`` is not the commit ``approved`` approved: a draft
        again, so the forge merges it for no one, until a round approves its head (rounds
        left) or a human lifts it (none left); its status comment says which commit was
        approved."""
        run = await self._run_of(approved)
        api = self._apis.get(run.forge)
        if run.pull is None or ForgeRunState(run.state).is_over:
            return
        if not isinstance(api, DraftApi):
            raise FleetError(f"forge {run.forge}'s API cannot hold a pull request as a draft")
        said = (
            f"review {approved.id} by {approved.reviewer}: approved at {approved.commit[:12]}; "
            f"the head {tip[:12]} changed since it was approved, a draft again"
        )
        try:
            await api.to_draft(run.slug, run.pull)
        except ForgeApiError as exc:
            log.warning("#%d of %s not made a draft: %s", run.pull, run.slug, exc)
            said += f" — not held: the forge refused ({exc})"
        await self._forge.audit_forge(run.id, approved.reviewer, "review", True, said)
        await self._publisher.refresh(run.id)

    async def hold_head(self, approved: ReviewRecord, tip: str) -> bool:
        """Before ``tip``, a head ``approved`` did not read, is pushed to its forge run's
        branch: its open pull request a draft, so that no one's merge (nor the forge's
        auto-merge) lands it before a round reads it; whether there is one (none open:
        the push is refused). A forge that will not make it a draft refuses the push."""
        run = (
            None if approved.forge_run is None else await self._forge.forge_run(approved.forge_run)
        )
        if run is None or run.pull is None or ForgeRunState(run.state).is_over:
            return False
        api = self._apis.get(run.forge)
        why = f"forge {run.forge}'s API cannot hold a pull request as a draft"
        if isinstance(api, DraftApi):
            try:
                await api.to_draft(run.slug, run.pull)
                why = ""
            except ForgeApiError as exc:
                log.warning("#%d of %s not made a draft: %s", run.pull, run.slug, exc)
                why = f"the forge refused to make it a draft ({exc})"
        if why:
            said = f"{tip[:12]} not pushed to {run.branch}: pull request #{run.pull} is ready "
            said += f"at {approved.commit[:12]}, which {approved.reviewer} approved, and {why}"
            await self._forge.audit_forge(run.id, approved.reviewer, "review", False, said)
            raise Unapproved(said)
        said = (
            f"review {approved.id} by {approved.reviewer}: approved at {approved.commit[:12]}; "
            f"the head {tip[:12]} changed since it was approved, a draft again"
        )
        await self._forge.audit_forge(run.id, approved.reviewer, "review", True, said)
        await self._publisher.refresh(run.id)
        return True

    def review_body(
        self, run: ForgeRunRecord, review: ReviewRecord, verdict: str, approved: bool
    ) -> str:
        """The review's words: the verdict (defused, each line quoted, so none passes for
        Fleetwarden's own), whose it is and at which commit."""
        said = self._publisher.posts.fit(run, verdict)
        words = "\n".join(f"> {line}" for line in said.splitlines())  # never Fleetwarden's
        if approved:
            head = f"**Review agent {review.reviewer} approves** this change"
        elif review.state == "ended":  # it gave no verdict: Fleetwarden's words say why
            head = f"**Review agent {review.reviewer} gave no verdict**: it is a human's call"
        else:
            head = (
                f"**Review agent {review.reviewer} still asks for changes** after round "
                f"{review.round} of {review.rounds}: it is a human's call now"
            )
        return (
            f"{head} (round {review.round} of {review.rounds}).\n\n{words}\n\n"
            f"_This is the verdict of Fleetwarden's review agent {review.reviewer}, not a "
            f"human's review. It read commit `{review.commit[:12]}` of `{run.branch}`._"
        )

    async def _run_of(self, review: ReviewRecord) -> ForgeRunRecord:
        run = None if review.forge_run is None else await self._forge.forge_run(review.forge_run)
        if run is None:
            raise FleetError(f"review {review.id}'s forge run is gone")
        return run
