"""What Fleetwarden posts on the forge for a forge run: the one status comment on the issue,
edited as the run goes; the pull request, opened once from the run's branch with the
requester asked to review; the check run on GitHub; the summary at ``done`` and the
watchdog's word when no ``done`` came; and the comments and descriptions an agent writes
through its forge door. Every comment and description ends with the provenance footer,
and whatever an agent wrote is redacted of secrets and defused first (mentions, images,
references to other issues, markup that hides).

A ``done ok`` whose pull request could not be opened leaves the run ``unpublished``: why, in
Fleetwarden's words (:mod:`fleet.forge.posts.unpublished`), is said once on the issue and in chat
and kept in its status comment — the forge's posts in a few words, chat in full — and
:meth:`Publisher.retry` (the forge runs' round) or :meth:`Publisher.open_now` (``pr NAME``)
publishes it once the cause is fixed. Only the run's own line is ever pushed: when it was
merged or discarded from chat meanwhile, nothing will open the pull request, and the run
ends, said on the issue and in chat."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from fleet.errors import FleetwardenError
from fleet.forge.facts import NoRunNews, PullNews, own_numbers
from fleet.forge.launcher import ForgeLauncher
from fleet.forge.model import ForgeApi, ForgeApiError, ForgeComment, ForgeIssue, ForgePull
from fleet.forge.posts.footer import footer, no_run_footer
from fleet.forge.posts.provenance import ProvenanceSource
from fleet.forge.posts.pull_words import done_body, pull_title
from fleet.forge.posts.reviews import Reviews
from fleet.forge.posts.status_comment import NOT_OPENED, StatusComment
from fleet.forge.posts.unpublished import (
    BRANCH_ENDED,
    LineEnded,
    Unpublished,
    audit_words,
    fix_words,
    why_unpublished,
)
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.budgets import Freeze
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState, Slug
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.code.lines import LinesStore
from fleet.markdown.defuse import BODY_LIMIT, POST_CAP, as_code, defuse
from fleet.markdown.hidden import cap, unseen_free
from fleet.markdown.inert import inert
from fleet.repos.facts import change_from_json
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

WHY_CAP = 300  # characters of why a branch was not published, said on the issue
Tell = Callable[[PullNews | NoRunNews], Awaitable[object]]
"""Tells chat what became of a run's pull request (:func:`bot.render.forge.pull_news`), or
that an issue was given to no agent that can start there (:func:`bot.render.forge.no_run_news`)."""


class Publisher:
    """Posts for forge runs, through each forge's API."""

    def __init__(
        self,
        *,
        forges: Mapping[str, ForgeEntry],
        apis: Mapping[str, ForgeApi],
        forge: ForgeStore,
        lines: LinesStore,
        launcher: ForgeLauncher,
        clock: Clock,
        source: ProvenanceSource,
        redact: Callable[[str], str],
        tell: Tell | None = None,
        freezes: Callable[[], Awaitable[list[Freeze]]] | None = None,
    ) -> None:
        self._forges = forges
        self._tell = tell
        self._apis = apis
        self._forge = forge
        self._lines = lines
        self._launcher = launcher
        self._clock = clock
        self.source = source
        self._redact = redact
        self.posted: set[int] = set()  # the comments posted here: their events are ours
        self._reviews: list[Reviews] = []  # see :meth:`review_with`
        self.status = StatusComment(
            forge=forge,
            approvals=source.approvals,
            source=source,
            redact=redact,
            post=self._post,
            api=self._api,
            freezes=freezes,
        )

    def review_with(self, reviews: Reviews) -> None:
        """Review runs' work with ``reviews`` from now on: a run whose work an agent reviews
        has its pull request opened as a draft, and each publish of its done asks the next
        round."""
        self._reviews.append(reviews)

    def _api(self, record: ForgeRunRecord) -> ForgeApi:
        return self._apis[record.forge]

    async def _post(
        self, record: ForgeRunRecord, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        comment = await self._api(record).comment(record.slug, number, body, pull=pull)
        self.posted.add(comment.id)
        return comment

    async def post(
        self, record: ForgeRunRecord, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        """Post ``body`` (signed already) on issue ``number`` of ``record``'s repository
        (``pull``: on pull request ``number``)."""
        return await self._post(record, number, body, pull=pull)

    async def answer(
        self, forge: str, slug: Slug, number: int, body: str, *, asked_by: str
    ) -> ForgeComment:
        """Post Fleetwarden's ``body`` (its own words, escaped already) on issue ``number``
        of ``slug``, where no run was started, with the footer saying so."""
        if not inert(body, (number,)):  # its parts are escaped: never, but said if it is
            log.warning("an answer on %s#%d was sent as code: it was not inert", slug, number)
            body = as_code(cap(unseen_free(body), 4000), (number,))
        foot = no_run_footer(asked_by, self.source.version)
        comment = await self._apis[forge].comment(slug, number, f"{body}\n\n{foot}")
        self.posted.add(comment.id)
        return comment

    def own_of(self, record: ForgeRunRecord) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        """The numbers ``record``'s posts may name: its issue and pull request, in one
        numbering (the second None) — or, on GitLab, which numbers them apart, its issue
        and its merge request each in its own."""
        if self._apis[record.forge].kind != "gitlab":
            return own_numbers(record), None
        return (record.issue,), (() if record.pull is None else (record.pull,))

    def fit(self, record: ForgeRunRecord, text: str, limit: int = POST_CAP) -> str:
        """What ``record``'s agent wrote, fit to post on its forge: no secret, no mention, no
        image, no markup that hides, no reference but to the run's own issue and pull
        request."""
        own, pulls = self.own_of(record)
        return defuse(self._redact(text), limit, own=own, own_pulls=pulls)

    async def signed(self, record: ForgeRunRecord, body: str) -> str:
        """``body`` with the run's provenance footer, as of now, within the forge's limit:
        a body whose rendering holds anything live (it should not: its parts are defused)
        goes out as one code block instead."""
        foot = footer(await self.source.provenance(record))
        room = BODY_LIMIT - len(foot) - 2
        own, pulls = self.own_of(record)
        if len(body) > room or not inert(body, own, own_pulls=pulls):
            log.warning("a post on %s#%d was sent as code: it was not inert", record.slug,
                        record.issue)  # fmt: skip
            body = as_code(cap(unseen_free(body), room // 4), own)
        return f"{body}\n\n{foot}"

    # -- the status comment (:mod:`fleet.forge.posts.status_comment`) ------------------------

    async def open_status(self, record: ForgeRunRecord) -> None:
        """Post the run's one status comment on its issue."""
        await self.status.open(record)

    async def refresh(self, key: int) -> None:
        """Move forge run ``key``'s task to where the run is, then edit its status comment
        when what it says has changed (every change of a run's state is refreshed)."""
        tasks = self.source.tasks
        if tasks is not None:
            try:
                await tasks.follow(key)
            except Exception:  # the run goes on; its task catches up at its next refresh
                log.exception("the task of forge run %d was not moved", key)
        await self.status.refresh(key)

    async def task_of(self, record: ForgeRunRecord, issue: ForgeIssue | None = None) -> int | None:
        """The id of the task ``record`` is, made now if it has none (from ``issue`` as
        just read); ``None`` without a register."""
        tasks = self.source.tasks
        return None if tasks is None else (await tasks.made(record, issue)).id

    async def not_opened_why(self, record: ForgeRunRecord, *, detail: bool = False) -> str | None:
        """Why the run's pull request could not be opened, as last said."""
        return await self.status.not_opened_why(record, detail=detail)

    # -- the agent's own posts -------------------------------------------------------------

    async def comment(
        self, record: ForgeRunRecord, number: int, text: str, *, pull: bool = False
    ) -> str:
        """Post what the agent wrote on ``number`` (its issue; ``pull``: its pull
        request); the URL."""
        body = await self.signed(record, self.fit(record, text))
        posted = await self._post(record, number, body, pull=pull)
        return posted.url

    async def describe(self, record: ForgeRunRecord, text: str) -> str:
        """Make the agent's words its pull request's description; the pull request's URL."""
        assert record.pull is not None
        body = await self.signed(record, self.fit(record, text))
        await self._api(record).edit_pull(record.slug, record.pull, body=body)
        return record.pull_url or f"#{record.pull}"

    async def open_pull(
        self, record: ForgeRunRecord, *, title: str, text: str, draft: bool
    ) -> ForgePull:
        """Push the run's branch — its own line's, never the agent's newer work — and open
        its one pull request (or find the open one), the requester asked to review;
        :class:`LineEnded` when that line is live no more."""
        line = await self._own_line(record)
        await self._launcher.push(record.agent, line.id)
        api = self._api(record)
        pull = await api.find_pull(record.slug, record.branch)
        if pull is None:
            base = line.base_ref
            said = self.fit(record, text)
            body = f"Closes #{record.issue}.\n\n{said}".rstrip()
            pull = await api.open_pull(
                record.slug,
                head=record.branch,
                base=base,
                title=pull_title(
                    self._redact(title), str(record.slug), own_numbers(record), record.issue
                ),
                body=await self.signed(record, body),
                draft=draft,
            )
            await self._audit(record, "pull", f"opened PR #{pull.number} from {record.branch}")
            try:
                await api.request_review(record.slug, pull.number, [record.requester])
            except ForgeApiError as exc:  # the requester opened it, or may not review
                log.info("review of #%d not requested: %s", pull.number, exc)
        await self._forge.update_forge_run(record.id, pull=pull.number, pull_url=pull.url)
        return pull

    async def _own_line(self, record: ForgeRunRecord) -> LineRecord:
        """The line ``record`` works on, while it is live (:class:`LineEnded` when not). A
        run recorded without its line has the agent's newest one, if it holds its branch."""
        if record.line_id is not None:
            line = await self._launcher.line(record.agent, record.line_id)
        else:
            line = await self._launcher.line(record.agent)
            if line is not None and line.branch != record.branch:
                line = None
        if line is None or line.state is not LineState.LIVE:
            raise LineEnded(record, line)
        return line

    # -- done, and the watchdog ------------------------------------------------------------

    async def publish(self, record: ForgeRunRecord) -> None:
        """After the agent's ``done``, once its turn is over: on ``ok`` the branch pushed,
        the pull request opened (or updated) and the summary posted on it; on ``failed``
        the summary posted on the issue."""
        summary = record.summary or ""
        if record.done_status != "ok":
            said = self.fit(record, summary)
            body = f"**{record.agent} could not finish:**\n\n{said}"
            await self._forge.update_forge_run(record.id, state=ForgeRunState.FAILED)
            await self._post(record, record.issue, await self.signed(record, body))
            await self.refresh(record.id)
            return
        try:
            pull = await self.open_pull(
                record, title=record.title, text=summary, draft=self.draft_of(record)
            )
        except LineEnded as exc:
            await self._line_ended(record, exc)
            return
        except (FleetwardenError, ForgeApiError) as exc:
            await self._not_opened(record, exc, again=False)
            return
        await self._published(record, pull, tell=record.pull is None)  # a new one is news

    def draft_of(self, record: ForgeRunRecord) -> bool:
        """Whether ``record``'s pull request opens as a draft: its forge says so, or an
        agent reviews it first."""
        reviewed = any(reviews.reviewed(record) for reviews in self._reviews)
        return self._forges[record.forge].draft or reviewed

    async def retry(self, record: ForgeRunRecord) -> bool:
        """Try again to open the pull request of ``record``, a run left ``unpublished``;
        whether it is open now (chat is told when it is; a refusal again is said only in the
        status comment, when its reason changed)."""
        try:
            pull = await self.open_pull(
                record, title=record.title, text=record.summary or "", draft=self.draft_of(record)
            )
        except LineEnded as exc:  # never to be opened: the run ends, said once
            await self._line_ended(record, exc)
            return False
        except (FleetwardenError, ForgeApiError) as exc:
            await self._not_opened(record, exc, again=True)
            return False
        await self._published(record, pull, tell=True, late=True)
        return True

    async def open_now(self, record: ForgeRunRecord, *, draft: bool) -> ForgePull:
        """``pr NAME``: open (or find) ``record``'s pull request now; a run left
        ``unpublished`` is published with it (its state and status comment follow); one
        whose line ended meanwhile ends, said on the issue and in chat (:class:`LineEnded`
        is raised all the same, for ``pr`` to answer)."""
        try:
            pull = await self.open_pull(
                record, title=record.title, text=record.summary or "", draft=draft
            )
        except LineEnded as exc:
            if ForgeRunState(record.state) is ForgeRunState.UNPUBLISHED:
                await self._line_ended(record, exc)
            raise
        if ForgeRunState(record.state) is ForgeRunState.UNPUBLISHED:
            fresh = await self._forge.forge_run(record.id) or record
            await self._published(fresh, pull)
        return pull

    async def _not_opened(self, record: ForgeRunRecord, exc: Exception, *, again: bool) -> None:
        """The run's work is done but its pull request is not open: ``unpublished``, why kept
        in the audit for its status comment and — the first time — said on the issue and in
        chat with what opens it."""
        entry = self._forges[record.forge]
        words = why_unpublished(
            exc, forge=record.forge, entry=entry, slug=str(record.slug), branch=record.branch
        )
        why = Unpublished(words.public, self._redact(words.detail)[:WHY_CAP])
        log.warning("the pull request of %s#%d was not opened: %s", record.slug, record.issue,
                    why.detail)  # fmt: skip
        if audit_words(why) != await self.status.not_opened_kept(record):
            await self._forge.audit_forge(
                record.id, "fleetwarden", "publish", False, NOT_OPENED + audit_words(why)
            )
        await self._forge.update_forge_run(record.id, state=ForgeRunState.UNPUBLISHED)
        if not again:
            fix = fix_words(record.agent)
            said = self.fit(record, why.public)
            body = (
                f"**{record.agent} is done, but its pull request could not be opened:** "
                f"{said}.\n\n{fix}."
            )
            fresh = await self._forge.forge_run(record.id) or record
            try:
                await self._post(record, record.issue, await self.signed(fresh, body))
            except ForgeApiError as failed:  # the forge may be what is down
                log.warning("why was not said on %s#%d: %s", record.slug, record.issue, failed)
            await self._say(PullNews.of(record, why=why.detail, fix=fix))
        await self.refresh(record.id)

    async def _line_ended(self, record: ForgeRunRecord, ended: LineEnded) -> None:
        """``record``'s line ended before its pull request was opened: nothing will open
        it, so the run ends — said on the issue and in chat, once, and in its status
        comment — instead of being tried again every few minutes."""
        log.warning("forge run %d of %s: %s", record.id, record.agent, ended)
        await self._forge.update_forge_run(
            record.id, state=ForgeRunState.ENDED, summary=str(ended), ended_at=self._clock.now()
        )
        await self._audit(record, "end", BRANCH_ENDED)
        fix = "The run has ended: Fleetwarden will not try to open it again"
        body = (
            f"**{record.agent}'s pull request will not be opened:** "
            f"{self.fit(record, str(ended))}.\n\n{fix}; give the issue to "
            "an agent again to start anew."
        )
        fresh = await self._forge.forge_run(record.id) or record
        try:
            await self._post(record, record.issue, await self.signed(fresh, body))
        except ForgeApiError as failed:
            log.warning("why was not said on %s#%d: %s", record.slug, record.issue, failed)
        await self._say(PullNews.of(record, why=str(ended), fix=fix))
        await self.refresh(record.id)

    async def tell(self, news: NoRunNews) -> None:
        """Tell chat that an issue was given to no agent that can start there."""
        await self._say(news)

    async def tell_ended(self, record: ForgeRunRecord, how: str, by: str) -> None:
        """Tell chat that ``record``'s pull request was ``how`` (merged, closed) by ``by``."""
        await self._say(PullNews.of(record, pull=record.pull, pull_url=record.pull_url, ended=how,
                              by=by))  # fmt: skip

    async def _say(self, news: PullNews | NoRunNews) -> None:
        """Tell chat what became of a run's pull request, or of an issue given to no one."""
        if self._tell is None:
            return
        try:
            await self._tell(news)
        except Exception:  # chat is news: the forge's side is done whatever it meets
            log.exception("chat was not told of %s's work on %s", news.agent, news.slug)

    async def _published(
        self, record: ForgeRunRecord, pull: ForgePull, *, tell: bool = False, late: bool = False
    ) -> None:
        """The pull request open for ``record``'s ``done ok``: waiting for review, its check
        run and the summary posted on it, its status comment brought up to date."""
        api = self._api(record)
        summary = record.summary or ""
        if tell:
            await self._say(PullNews.of(record, pull=pull.number, pull_url=pull.url, late=late))
        # Published: waiting for review from now on, whatever the posts below meet (a
        # done is never published twice).
        await self._forge.update_forge_run(record.id, state=ForgeRunState.WAITING)
        fresh = await self._forge.forge_run(record.id) or record
        try:
            check = await api.check_run(
                record.slug,
                head_sha=pull.head_sha,
                title=f"{record.agent}: done",
                summary=self.fit(fresh, summary, 4000),
                status="completed",
                conclusion="success",
                check_id=None,
            )
            if check is not None:
                await self._forge.update_forge_run(record.id, check_id=check)
        except ForgeApiError as exc:  # an App without checks: write, say
            log.warning("no check run on %s#%d: %s", record.slug, pull.number, exc)
        change = change_from_json(await self._lines.run_change(fresh.run_id or 0))
        body = done_body(record.agent, summary, change, lambda t: self.fit(fresh, t))
        try:
            await self._post(record, pull.number, await self.signed(fresh, body), pull=True)
        except ForgeApiError as exc:
            log.warning("the summary of %s#%d was not posted: %s", record.slug, pull.number, exc)
        await self.refresh(record.id)
        for reviews in self._reviews:  # its review agent's next round
            try:
                await reviews.published(record.id, pull.head_sha)
            except Exception:  # published all the same: a human reviews it
                log.exception("no round of review was asked for forge run %d", record.id)

    async def watchdog(self, record: ForgeRunRecord, minutes: int) -> None:
        """Say on the issue that the agent did not signal done within ``minutes``."""
        await self._forge.update_forge_run(
            record.id, done_signal="watchdog", state=ForgeRunState.WAITING
        )
        fresh = await self._forge.forge_run(record.id) or record
        body = (
            f"**{record.agent} did not signal done** within {minutes} minutes of silence. "
            "What it left is kept on its branch; a comment mentioning the bot continues it."
        )
        number = fresh.pull or fresh.issue
        signed = await self.signed(fresh, body)
        await self._post(record, number, signed, pull=fresh.pull is not None)
        await self._audit(record, "watchdog", f"no done within {minutes} minutes")
        await self.refresh(record.id)

    async def _audit(self, record: ForgeRunRecord, op: str, detail: str) -> None:
        await self._forge.audit_forge(record.id, "fleetwarden", op, True, detail)
