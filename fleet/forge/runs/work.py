"""Forge work: what each forge event does to forge runs.

An event (a webhook delivery or a polled one, already verified and taken once by the
ledger) is acted on here, in the background, one at a time per issue, as
:func:`~fleet.forge.runs.decide.decide` says: an allowed person's label
``fleetwarden:AGENT``, assignment to the bot or mention of it starts a run of the agent on
the issue's branch; a comment or a "request changes" review on its pull request continues
the same session (or starts the next run on its branch); the pull request closed ends it;
the issue unlabelled, unassigned or closed stops it. Everything else is ignored, and what
was ignored, and why, is kept as the delivery's outcome and in the forge audit. Who may
act is asked of the forge at each event (:mod:`fleet.forge.events.access`).

How a run starts is :mod:`fleet.forge.runs.starts`'s; how it goes on after a comment or a
review is :mod:`fleet.forge.runs.onward`'s; what a run's end, its
``done`` and the watchdog do is :mod:`fleet.forge.posts.publish`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from fleet.approvals.budget_asks import is_budget_ask
from fleet.approvals.service import ApprovalEvent
from fleet.approvals.spend import CHANNEL as SPEND
from fleet.approvals.spend import SpendAsks, SpendError
from fleet.errors import FleetwardenError
from fleet.forge.api.rest import ForgeRateLimited
from fleet.forge.events.access import Access
from fleet.forge.events.changes import confirmed
from fleet.forge.events.holds import ForgeHolds
from fleet.forge.events.kept import event_of
from fleet.forge.launcher import ForgeLauncher
from fleet.forge.model import ForgeApi, ForgeApiError, ForgeEvent
from fleet.forge.posts.publish import Publisher
from fleet.forge.runs.decide import (
    Action,
    Begin,
    Continue,
    End,
    Ignore,
    IssueClosed,
    Spend,
    Stop,
    decide,
)
from fleet.forge.runs.onward import Onward
from fleet.forge.runs.starts import RunStarts
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState, Slug
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.repos.schema import RepoEntry
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)


class ForgeWork:
    """Forge events in, forge runs out."""

    def __init__(
        self,
        *,
        forges: Mapping[str, ForgeEntry],
        apis: Mapping[str, ForgeApi],
        repos: Mapping[str, RepoEntry],
        forge: ForgeStore,
        launcher: ForgeLauncher,
        publisher: Publisher,
        clock: Clock,
        spend: SpendAsks | None = None,
    ) -> None:
        """``spend``: the asks at runs' caps a comment answers (``None``: metering is off)."""
        self.forges = forges
        self.spend = spend
        self.apis = apis
        self.forge = forge
        self.launcher = launcher
        self.publisher = publisher
        self.clock = clock
        self.access = Access(forges, apis)
        self._repos = repos
        self._by_slug = {
            (entry.forge, slug.lower()): name
            for name, entry in repos.items()
            if entry.forge is not None and (slug := entry.forge_slug()) is not None
        }
        self._locks: dict[tuple[str, str, int], asyncio.Lock] = {}
        # Forges whose events wait: a login not the credential's, a rate limit.
        self.holds = ForgeHolds(forges, apis, clock)
        self.starts = RunStarts(
            forges=forges,
            apis=apis,
            forge=forge,
            launcher=launcher,
            publisher=publisher,
            clock=clock,
            lock=self.lock,
        )
        self.onward = Onward(
            forges=forges, forge=forge, launcher=launcher, publisher=publisher, clock=clock
        )
        self._acting: set[tuple[str, str]] = set()  # deliveries being acted on now
        self._tasks: set[asyncio.Task[None]] = set()

    # -- events in -------------------------------------------------------------------------

    async def receive(self, event: ForgeEvent) -> str:
        """Take ``event`` (its delivery already recorded once): decided in the background,
        so the forge's delivery is answered at once; the word for the answer."""
        said = await self._not_taken(event)
        if said is not None:
            return said
        self.spawn(self._handle(event), f"forge event {event.delivery}")
        return "accepted"

    async def _not_taken(self, event: ForgeEvent) -> str | None:
        """Why ``event`` is not acted on now (kept while its forge is held; ignored outside
        the config's repositories), or ``None``: it is."""
        held = self.holds.refusal(event.forge)
        if held is not None:  # kept, not acted on: the next start, fixed, acts on it
            log.info("forge %s delivery %s: %s", event.forge, event.delivery, held)
            return f"refused: {held}"
        if self._repo_of(event) is None:
            outcome = f"ignored: {event.repo} is no repository of the config on {event.forge}"
            await self.forge.set_delivery_outcome(event.forge, event.delivery, outcome)
            return outcome
        return None

    async def resume_kept(self) -> int:
        """Act on the deliveries taken but not acted on before the last stop, or while their
        forge was rate limited (their events kept in the ledger, within the forges' event
        age), one after the other in the order they came, in the background: an agent
        two of them start is started by the first; how many."""
        if not self.forges:
            return 0
        age = max(entry.max_event_age_seconds for entry in self.forges.values())
        taken = await self.forge.unsettled_deliveries(self.clock.now() - timedelta(seconds=age))
        kept: list[ForgeEvent] = []
        for forge, delivery, text in taken:
            if (forge, delivery) in self._acting:
                continue
            event = event_of(text)
            if event is None or (event.forge, event.delivery) != (forge, delivery):
                await self.forge.set_delivery_outcome(
                    forge, delivery, "dropped: its kept event could not be read"
                )
                continue
            log.info("forge %s delivery %s: acted on after a restart", forge, delivery)
            kept.append(event)
        if kept:
            self.spawn(self._in_order(kept), f"{len(kept)} kept deliveries")
        return len(kept)

    async def _in_order(self, kept: list[ForgeEvent]) -> None:
        for event in kept:
            if await self._not_taken(event) is None:
                await self._handle(event)

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``work`` in the background, kept until it ends; its failure is logged."""

        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed", what)

        task = asyncio.get_running_loop().create_task(guarded(), name=what)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_approval(self, event: ApprovalEvent) -> None:
        """An approvals listener: a forge run's ask at its cap is said on its issue too,
        where the people allowed to give it work may answer with a comment."""
        request = event.request
        if not event.opened or request.channel != SPEND or is_budget_ask(request.agent):
            return
        self.spawn(self._tell_asked(request.agent, request.run_id), f"the ask of {request.agent}")

    async def _tell_asked(self, agent: str, run_id: int) -> None:
        run = await self.forge.agent_forge_run(agent)
        if run is None or ForgeRunState(run.state) is not ForgeRunState.WORKING:
            return
        if run.run_id != run_id:  # the ask of the agent's other run
            return
        login = self.forges[run.forge].login
        said = (
            f"💸 **{agent}** reached its run's cap and is paused. A comment mentioning "
            f"@{login} that says only `raise` (by the raise offered), `raise +AMOUNT` (`+$2`, "
            "`+50k`: at most the raise offered) or `stop` answers it, from whoever may give "
            "it work; so does an answer in chat, where an operator may raise more."
        )
        posts = self.publisher.posts
        await posts.post(run, run.issue, await posts.signed(run, said))
        await self.forge.audit_forge(run.id, agent, "ask", True, "asked at its run's cap")
        await self.publisher.refresh(run.id)

    async def settle(self) -> None:
        """Wait for the background work now under way (for tests and a clean stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def lock(self, forge: str, slug: Slug, number: int) -> asyncio.Lock:
        return self._locks.setdefault((forge, str(slug).lower(), number), asyncio.Lock())

    def _repo_of(self, event: ForgeEvent) -> str | None:
        return self._by_slug.get((event.forge, str(event.repo).lower()))

    def quiet(self, forge: str) -> bool:
        """Whether ``forge`` is not to be called now (its rate limit); once it lifts, the
        deliveries that waited for it are acted on."""
        quiet, lifted = self.holds.quiet(forge)
        if lifted:
            self.spawn(self._resumed(), f"deliveries that waited for {forge}")
        return quiet

    async def _resumed(self) -> None:
        await self.resume_kept()

    async def _handle(self, event: ForgeEvent) -> None:
        key = (event.forge, event.delivery)
        if self.quiet(event.forge) or key in self._acting:  # kept: acted on once it lifts
            return
        self._acting.add(key)
        try:
            await self._act_on(event)
        finally:
            self._acting.discard(key)

    async def _live(self, event: ForgeEvent) -> ForgeRunRecord | None:
        """The live run ``event`` is about: of its pull request or of its issue, as the
        event says which (GitLab numbers the two apart)."""
        return await self.forge.live_forge_run(
            event.forge, event.repo, event.number, pull=event.is_pull
        )

    async def _act_on(self, event: ForgeEvent) -> None:
        repo = self._repo_of(event)
        canonical = self._repos[repo].forge_slug() if repo is not None else None
        if canonical is not None:  # one spelling of the repository in the ledger, the config's
            event = replace(event, repo=Slug.parse(canonical))
        run = await self._live(event)
        number = run.issue if run is not None else event.number
        async with self.lock(event.forge, event.repo, number):
            run = await self._live(event)
            try:
                outcome = await self._act(event, run)
            except ForgeRateLimited as exc:  # kept, and acted on once the forge takes calls
                self.holds.back_off(event.forge, exc)
                log.warning("forge event %s of %s waits: %s", event.delivery, event.forge, exc)
                return
            except FleetwardenError as exc:  # the forge's answer, the fleet's refusal
                outcome = f"failed: {exc}"
                log.warning("forge event %s of %s: %s", event.delivery, event.forge, exc)
        if outcome.startswith("ignored"):  # kept apart from the run's own operations
            agent = run.agent if run is not None else "-"
            detail = f"{event.name} by @{event.actor} on #{event.number}: {outcome}"
            await self.forge.audit_forge(None, agent, "event", False, detail)
        # Decided last: whoever sees the delivery's outcome finds its audit already kept.
        await self.forge.set_delivery_outcome(event.forge, event.delivery, outcome)
        log.info("forge %s event %s (%s): %s", event.forge, event.delivery, event.name, outcome)

    async def _act(self, event: ForgeEvent, run: ForgeRunRecord | None) -> str:
        entry = self.forges[event.forge]
        if event.confirm:  # read from how the issue now is: which change, and whose?
            changes = await self.apis[event.forge].issue_changes(event.repo, event.number)
            oldest = self.clock.now() - timedelta(seconds=entry.max_event_age_seconds)
            found = confirmed(event, changes, entry, not_before=oldest)
            if found is None:
                return f"ignored: the change by @{event.actor} could not be confirmed"
            event = found
        return await self._carry_out(decide(event, run, entry, self.publisher.posts.posted), event)

    async def _carry_out(self, action: Action, event: ForgeEvent) -> str:
        match action:
            case Ignore(why):
                return f"ignored: {why}"
            case Begin(agent):
                return await self._allowed_then(event, lambda: self._begin(event, agent))
            case Continue(run, kind):
                return await self._allowed_then(event, lambda: self._continue(run, event, kind))
            case Spend(run, verb, amount):
                return await self._allowed_then(
                    event, lambda: self._spend(run, event, verb, amount)
                )
            case Stop(run, how):
                return await self._allowed_then(event, lambda: self._stop(run, event, how))
            case End(run):
                return await self._ended(run, event)
            case IssueClosed(run):
                assert run.pull is not None
                pull = await self.apis[run.forge].pull(run.slug, run.pull)
                if pull.state == "closed":  # closed by its pull request's merge ("Closes #N")
                    return await self._ended(run, replace(event, merged=pull.merged))
                return await self._allowed_then(event, lambda: self._stop(run, event, "closed"))

    async def _allowed_then(
        self, event: ForgeEvent, then: Callable[[], Coroutine[Any, Any, str]]
    ) -> str:
        why = await self.access.refusal(event.forge, event.repo, event.actor)
        if why is not None:
            return f"ignored: @{event.actor} {why}"
        return await then()

    # -- a run's life ----------------------------------------------------------------------

    async def _begin(self, event: ForgeEvent, agent: str) -> str:
        repo = self._repo_of(event)
        assert repo is not None
        return await self.starts.begin(event, agent, repo, self._repos[repo])

    async def _continue(self, run: ForgeRunRecord, event: ForgeEvent, kind: str) -> str:
        return await self.onward.on_event(run, event, kind)

    async def _spend(
        self, run: ForgeRunRecord, event: ForgeEvent, verb: str, amount: str | None
    ) -> str:
        """An allowed person's ``raise`` or ``stop`` on a run asking at its cap: carried out
        and answered where it was said. Only a working run's own open ask is answered so —
        with none (a queued run, whose agent's other run may ask), the words go to the agent
        as a comment's, as before: from the forge, a cap is raised only when Fleetwarden
        asked, by at most its offer (an operator's ``raise`` in chat lifts one at any time,
        by any amount)."""
        by = f"@{event.actor} on {event.forge}"
        asks = self.spend
        asked = await asks.open_ask(run.agent) if asks is not None else None
        working = ForgeRunState(run.state) is ForgeRunState.WORKING
        if asks is None or asked is None or not working or asked[1].run_id != run.run_id:
            return await self._continue(run, event, "comment")
        try:
            if verb != "stop":
                said = await asks.raise_cap(run.agent, amount, by=by, run_id=run.run_id)
            elif await asks.stop_asked(run.agent, by=by, run_id=run.run_id):
                said = f"Stopped **{run.agent}** at its run's cap, as @{event.actor} asked."
            else:
                said = (
                    f"Not done: {run.agent}'s ask at its cap is no longer open (answered, or "
                    "nobody answered in time)."
                )
        except SpendError as exc:
            said = f"Not done: {exc}."
        await self.forge.audit_forge(run.id, run.agent, verb, True, f"{said[:200]} ({by})")
        signed = await self.publisher.posts.signed(run, said)
        await self.publisher.posts.post(run, event.number, signed, pull=event.is_pull)
        await self.publisher.refresh(run.id)
        return f"{verb}: {said}"

    async def _stop(self, run: ForgeRunRecord, event: ForgeEvent, how: str) -> str:
        if ForgeRunState(run.state) is not ForgeRunState.QUEUED:  # else it runs other work
            await self.launcher.stop(
                run.agent, by=f"@{event.actor} on {event.forge}", line_id=run.line_id
            )
        else:  # its place in the fleet's spawn queue goes with it
            await self.launcher.unqueue(run.id)
        await self.forge.update_forge_run(
            run.id,
            state=ForgeRunState.STOPPED,
            summary=f"the issue was {how} by @{event.actor}",
            ended_at=self.clock.now(),
        )
        await self.forge.audit_forge(run.id, run.agent, "stop", True, f"#{run.issue} {how}")
        await self.publisher.refresh(run.id)
        self.launcher.kick()  # its agent may be free for its next issue, waiting in the queue
        return f"stopped {run.agent}: the issue was {how}"

    async def _ended(self, run: ForgeRunRecord, event: ForgeEvent) -> str:
        await self.launcher.stop(
            run.agent, by=f"@{event.actor} on {event.forge}", line_id=run.line_id
        )
        deleted = ""
        if event.merged:
            try:
                await self.apis[run.forge].delete_branch(run.slug, run.branch)
                deleted = ", its branch deleted"
            except ForgeApiError as exc:
                deleted = f", its branch kept ({exc.status})"
        await self.launcher.discard(run.agent, line_id=run.line_id)
        how = "merged" if event.merged else "closed"
        await self.forge.update_forge_run(
            run.id,
            state=ForgeRunState.ENDED,
            summary=f"the pull request was {how} by @{event.actor}{deleted}",
            ended_at=self.clock.now(),
        )
        await self.forge.audit_forge(run.id, run.agent, "end", True, f"PR #{run.pull} {how}")
        await self.publisher.refresh(run.id)
        await self.publisher.tell_ended(run, how, f"@{event.actor} on {event.forge}")
        self.launcher.kick()  # its agent is free for its next issue, waiting in the queue
        return f"ended {run.agent}'s run: PR #{run.pull} {how}{deleted}"
