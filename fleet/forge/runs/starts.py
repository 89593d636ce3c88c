"""How a forge run starts: :meth:`RunStarts.begin` makes the run of an issue given to an
agent (its row, its audit line, its status comment) — or, given to no agent it can start
there, answers on the issue why (:mod:`fleet.forge.posts.answers`) — :meth:`RunStarts.launch`
starts the agent on it through the fleet's admission — its prompt the issue as its page
shows it — or keeps it queued saying why (its agent busy or at work on another issue, a
budget, a full concurrency cap: the admission's words), its place in the fleet's spawn
queue, which starts it once the agent and a slot are free. Each run is a task
(:mod:`fleet.forge.tasks`), made as it begins and carried by each of its launches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from fleet.forge.facts import NoRunNews
from fleet.forge.launcher import ForgeLauncher, LaunchRefused, Started
from fleet.forge.model import EventKind, ForgeApi, ForgeApiError, ForgeEvent, ForgeIssue
from fleet.forge.posts.answers import Unstartable, no_run_words, why_not
from fleet.forge.posts.publish import Publisher
from fleet.forge.posts.unpublished import audit_words
from fleet.forge.runs.prompts import issue_prompt
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState, NewForgeRun, Slug
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.names import is_agent_name
from fleet.repos.hook.policy import Issue
from fleet.repos.line.identity import forge_co_author
from fleet.repos.schema import RepoEntry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)


class RunStarts:
    """The starting of forge runs, for :class:`fleet.forge.runs.work.ForgeWork`."""

    def __init__(
        self,
        *,
        forges: Mapping[str, ForgeEntry],
        apis: Mapping[str, ForgeApi],
        forge: ForgeStore,
        launcher: ForgeLauncher,
        publisher: Publisher,
        clock: Clock,
        lock: Callable[[str, Slug, int], asyncio.Lock],
    ) -> None:
        self.forges = forges
        self.apis = apis
        self._forge = forge
        self.launcher = launcher
        self.publisher = publisher
        self.clock = clock
        self.lock = lock

    async def begin(self, event: ForgeEvent, agent: str, repo: str, entry: RepoEntry) -> str:
        """A new forge run of ``agent`` on ``event``'s issue of ``repo`` (``entry``): its
        status comment posted, then launched or queued; the outcome, in a few words."""
        agent_repo = await self.launcher.repo_of(agent) if is_agent_name(agent) else None
        if agent_repo != repo:
            return await self._unstartable(event, agent, repo, agent_repo)
        api = self.apis[event.forge]
        issue = await api.issue(event.repo, event.number)
        if issue.state != "open":
            return f"ignored: #{issue.number} is closed"
        record = await self._forge.add_forge_run(
            NewForgeRun(
                forge=event.forge,
                repo=repo,
                slug=event.repo,
                issue=issue.number,
                title=issue.title[:300],
                agent=agent,
                branch=f"{entry.branch_prefix}{agent}/issue-{issue.number}",
                requester=event.actor,
                issue_url=issue.url,
                given=f"#{issue.number} given to {agent} by @{event.actor}",
            )
        )
        if record is None:
            return f"ignored: #{issue.number} already has a run"
        await self.publisher.task_of(record, issue)  # the task it is, before anything is said
        record = await self.publisher.open_status(record)  # with its status comment's id
        return await self.launch(record, issue)

    async def _unstartable(
        self, event: ForgeEvent, agent: str, repo: str, agent_repo: str | None
    ) -> str:
        """No run of ``agent`` can start on ``event``'s issue of ``repo``: said on the issue,
        once for the delivery (its outcome is written before the post, so a delivery acted
        on again after a restart does not say it twice)."""
        roster = await self.launcher.agents()
        reason = Unstartable(
            agent=agent,
            label=event.label if event.kind is EventKind.LABELED else None,
            repo=repo,
            slug=str(event.repo),
            known=agent in roster or (is_agent_name(agent) and agent_repo is not None),
            agent_repo=agent_repo,
        )
        outcome = f"answered: {why_not(reason)}"
        await self._forge.set_delivery_outcome(event.forge, event.delivery, outcome)
        prefix = self.forges[event.forge].trigger.label_prefix
        try:
            await self.publisher.posts.answer(
                event.forge,
                event.repo,
                event.number,
                no_run_words(reason, roster, prefix),
                asked_by=f"@{event.actor}",
            )
        except ForgeApiError as exc:
            log.warning("no run on %s#%d: why was not said: %s", event.repo, event.number, exc)
            await self._tell_no_run(event, reason)
            return f"ignored: {why_not(reason)} (not said on the issue: {exc})"
        await self._tell_no_run(event, reason)
        await self._forge.audit_forge(
            None, agent if is_agent_name(agent) else "-", "answer", False,
            f"#{event.number} by @{event.actor}: {why_not(reason)}",
        )  # fmt: skip
        return outcome

    async def _tell_no_run(self, event: ForgeEvent, reason: Unstartable) -> None:
        """Chat hears of an issue given to no agent that can start there, once for the
        delivery (called after its outcome is written)."""
        news = NoRunNews(
            agent=reason.agent,
            slug=event.repo,
            issue=event.number,
            forge=event.forge,
            actor=event.actor,
            label=reason.label,
            why=why_not(reason),
        )
        await self.publisher.tell(news)

    async def launch(
        self, record: ForgeRunRecord, issue: ForgeIssue | None = None, *, own_turn: bool = False
    ) -> str:
        """Start ``record``'s agent on it, or keep it queued saying why. ``issue``: as just
        read (else read now: a queued run starts on what the issue says by then).
        ``own_turn``: the fleet's spawn queue gives the run its turn now; else a run that
        waits there for its turn is left to it, the forge not asked for anything."""
        if not own_turn and await self.launcher.queued(record.id):
            return f"queued: {record.summary or 'waiting for its turn'}"
        api = self.apis[record.forge]
        if issue is None:
            issue = await api.issue(record.slug, record.issue)
        # Two reads of the forge, side by side: each is a round trip to its API.
        comments, co_author = await asyncio.gather(
            api.comments(record.slug, record.issue), self._co_author(api, record)
        )
        entry = self.forges[record.forge]
        prompt = await asyncio.to_thread(  # reading hostile HTML is work for a thread
            issue_prompt,
            record.forge,
            record.slug,
            issue,
            [c for c in comments if c.id != record.comment_id],
            branch=record.branch,
            bot_login=entry.login,
        )
        request = LaunchRequest(
            record.agent,
            origin="forge",
            by=f"@{record.requester} on {record.forge}",
            prompt=prompt,
            repo=record.repo,
            branch=record.branch,
            issue=Issue(str(record.slug), record.issue),
            co_author=co_author,
            collect=False,
            quote_under=entry.quote_under,
            task=await self.publisher.task_of(record, issue),  # made already, or after a restart
        )
        try:
            started = await self.launcher.start(request, key=record.id)
        except LaunchRefused as exc:
            return await self.keep_queued(record, exc.public, exc)
        return await self.working(record, started)

    async def working(self, record: ForgeRunRecord, started: Started) -> str:
        """``record``'s agent started on it (``started``): the run working, its status
        comment saying so; the outcome, in a few words."""
        line = await self.launcher.line(record.agent)
        await self._forge.update_forge_run(
            record.id,
            state=ForgeRunState.WORKING,
            run_id=started.run_id,
            line_id=started.line_id,
            # An earlier run's branch of this issue may live on: this one is named anew.
            branch=line.branch if line is not None else record.branch,
            activity_at=self.clock.now(),
        )
        await self.publisher.refresh(record.id)
        return f"started {record.agent} on #{record.issue} (run {started.run_id})"

    async def _co_author(self, api: ForgeApi, record: ForgeRunRecord) -> str | None:
        """Who gave the agent the issue, as its commits' ``Co-authored-by:`` — the address
        their forge credits them by (:func:`fleet.repos.line.identity.forge_co_author`) — or
        None when the forge cannot say (the run starts all the same)."""
        try:
            address = await api.commit_address(record.slug, record.requester)
        except ForgeApiError as exc:
            log.info("no co-author for @%s: %s", record.requester, exc)
            return None
        return forge_co_author(record.requester, address) if address else None

    async def keep_queued(
        self, record: ForgeRunRecord, why: str, refused: LaunchRefused | None = None
    ) -> str:
        """``record`` kept queued, ``why`` its public words (the status comment's); a
        refused launch's detail is the operator's: the log and the audit keep it."""
        if ForgeRunState(record.state) is not ForgeRunState.QUEUED or record.summary != why:
            await self._forge.update_forge_run(record.id, state=ForgeRunState.QUEUED, summary=why)
            if refused is not None and refused.detail != refused.public:
                log.warning("%s on %s#%d: %s", record.agent, record.slug, record.issue,
                            refused.detail)  # fmt: skip
                await self._forge.audit_forge(
                    record.id, record.agent, "start", False, audit_words(refused)
                )
            await self.publisher.refresh(record.id)
        return f"queued: {why}"
