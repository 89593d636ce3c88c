"""How a forge run goes on after it started: a comment or a review by someone allowed
continues the agent's session with their words — after the turn under way, thawed when it
was frozen — or, when the agent has no session to continue (a ``command`` agent, a run
that ended), starts its next run on the same line: the same branch, so the same pull
request and issue, launched as forge runs are (the budgets asked first), its prompt where
the work stands and the words that asked for more. A session is continued only while it
works on the run's own line: an agent whose newest branch is another one (other work, cut
since) is not sent the words. When neither can be, the run stays as it was and why is said
on the issue or pull request the words came on (:class:`Onward`), never only in the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Final

from fleet.errors import FleetwardenError
from fleet.forge.launcher import ForgeLauncher, LaunchRefused, OtherLine
from fleet.forge.model import ForgeApiError, ForgeEvent
from fleet.forge.posts.publish import Publisher
from fleet.forge.posts.unpublished import audit_words
from fleet.forge.runs.prompts import follow_up_prompt, next_run_prompt
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.supervisor.admission.request import LaunchRequest
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

TURN_WAIT: Final = 15 * 60.0
"""Seconds a follow-up waits for a turn under way to end before it is tried anyway."""
WHY_CAP: Final = 300  # characters of why a follow-up was not taken, said on the forge


class Onward:
    """Follow-ups of forge runs, for :class:`fleet.forge.runs.work.ForgeWork` (which holds the
    issue's lock around each)."""

    def __init__(
        self,
        *,
        forges: Mapping[str, ForgeEntry],
        forge: ForgeStore,
        launcher: ForgeLauncher,
        publisher: Publisher,
        clock: Clock,
    ) -> None:
        self.forges = forges
        self._forge = forge
        self.launcher = launcher
        self.publisher = publisher
        self.clock = clock

    async def on_event(self, run: ForgeRunRecord, event: ForgeEvent, kind: str) -> str:
        """``event`` (a ``comment`` or ``review`` ``kind``, by someone allowed) on ``run``:
        the outcome, in a few words; refused on the forge when it cannot be taken."""
        if ForgeRunState(run.state) is ForgeRunState.QUEUED:
            return "ignored: the run has not started yet"
        text = await asyncio.to_thread(  # reading hostile HTML is work for a thread
            follow_up_prompt, event.actor, event.body, kind, run.pull or run.issue
        )
        try:
            return await self.go_on(
                run, text, by=f"@{event.actor}", requester=f"@{event.actor} on {run.forge}",
                how=f"{kind} by @{event.actor}", where=event.number,
            )  # fmt: skip
        except OtherLine as exc:  # its session is other work's
            await self._refused(run, event.number, kind, exc, pull=event.is_pull)
            return f"refused: {exc}"
        except LaunchRefused as exc:
            why = f"it has no session to continue, and its next run on {run.branch} did not start"
            told = LaunchRefused(f"{why} — {exc.public}", f"{why} — {exc.detail}")
            await self._refused(run, event.number, kind, told, pull=event.is_pull)
            return f"refused: {exc.detail}"

    async def go_on(
        self, run: ForgeRunRecord, text: str, *, by: str, requester: str, how: str, where: int
    ) -> str:
        """Continue ``run``'s session with ``text`` (its prompt), or start its next run on
        the same line when the agent has no session to continue; :class:`LaunchRefused`
        when neither can be (``run`` is then as it was). ``how``: who asked, in a few words;
        ``where``: the issue or pull request they asked on."""
        # Working again before the session is: its next `done` may come at once.
        await self._working(run)
        since = self.launcher.turns.ends(run.agent)  # a turn's end from here on is seen
        try:
            try:
                run_id = await self._follow_up(run, text, by=by)
            except OtherLine:
                raise
            except FleetwardenError:
                if not await self.launcher.is_running(run.agent):
                    raise
                await self._turn_over(run.agent, since)  # a headless turn under way: after it
                run_id = await self._follow_up(run, text, by=by)
        except OtherLine:  # the agent's session is other work's: never sent into it
            await self._as_it_was(run)
            raise
        except FleetwardenError as exc:
            if await self.launcher.is_running(run.agent):  # its live session refused it
                await self._as_it_was(run)
                raise
            log.info("%s has no session to continue (%s): its next run starts", run.agent, exc)
            return await self._next_run(run, text, requester=requester, how=how, where=where)
        if run_id is not None:
            await self._forge.update_forge_run(run.id, run_id=run_id)
        await self._forge.audit_forge(run.id, run.agent, "continue", True, f"{how} on #{where}")
        await self.publisher.refresh(run.id)
        return f"continued {run.agent}'s session ({how})"

    async def _follow_up(self, run: ForgeRunRecord, text: str, *, by: str) -> int | None:
        """``text`` into ``run``'s agent's session, only when that session works on the
        run's line (:class:`OtherLine` when it works on another, or on none)."""
        return await self.launcher.follow_up(run.agent, text, by=by, line_id=run.line_id)

    async def _next_run(
        self, run: ForgeRunRecord, follow_up: str, *, requester: str, how: str, where: int
    ) -> str:
        """``run``'s next run on its line, ``follow_up`` in its prompt (``run`` marked
        working already); :class:`LaunchRefused` with ``run`` as it was when it cannot."""
        prompt = next_run_prompt(
            run.forge, run.slug, run.issue, run.title, branch=run.branch, pull=run.pull,
            follow_up=follow_up,
        )  # fmt: skip
        # Not named anew, nor for its issue again: its live line has both.
        request = LaunchRequest(
            run.agent,
            origin="forge",
            by=requester,
            prompt=prompt,
            repo=run.repo,
            collect=False,
            quote_under=self.forges[run.forge].quote_under,  # as its first run's
            task=await self.publisher.task_of(run),  # its runs all bound to the one task
        )
        try:
            started = await self.launcher.start_on_line(request, run.line_id)
        except LaunchRefused:
            await self._as_it_was(run)
            raise
        await self._forge.update_forge_run(run.id, run_id=started.run_id)
        said = f"{how} on #{where}: no session to continue, so its next run started"
        await self._forge.audit_forge(run.id, run.agent, "continue", True, said)
        await self.publisher.refresh(run.id)
        return f"started {run.agent}'s next run on {run.branch} ({how}): no session to continue"

    async def _working(self, run: ForgeRunRecord) -> None:
        await self._forge.update_forge_run(
            run.id,
            state=ForgeRunState.WORKING,
            done_signal=None,
            done_status=None,
            activity_at=self.clock.now(),
        )

    async def _as_it_was(self, run: ForgeRunRecord) -> None:
        """``run`` back as it was: its done, if it had said it, still stands."""
        await self._forge.update_forge_run(
            run.id,
            state=ForgeRunState(run.state),
            done_signal=run.done_signal,
            done_status=run.done_status,
        )

    async def _refused(
        self,
        run: ForgeRunRecord,
        number: int,
        kind: str,
        refused: LaunchRefused,
        *,
        pull: bool = False,
    ) -> None:
        """Say on ``number`` (where the words came) that ``run`` could not take them up: the
        refusal's public words there, its detail in the audit's operator part."""
        said = self.publisher.posts.fit(run, refused.public[:WHY_CAP])
        login = self.forges[run.forge].login
        body = (
            f"**{run.agent}** could not take up this {kind}: {said}.\n\nOnce that is "
            f"fixed, comment again (on the pull request, or on the issue mentioning "
            f"`@{login}`)."
        )
        kept = audit_words(LaunchRefused(f"{kind}: {refused.public}", f"{kind}: {refused.detail}"))
        await self._forge.audit_forge(run.id, run.agent, "continue", False, kept)
        try:
            signed = await self.publisher.posts.signed(run, body)
            await self.publisher.posts.post(run, number, signed, pull=pull)
        except ForgeApiError as exc:
            log.warning("why a %s was not taken was not said on #%d: %s", kind, number, exc)
        await self.publisher.refresh(run.id)

    async def _turn_over(self, agent: str, since: int) -> None:
        """Wait for a turn of ``agent`` under way to end (up to :data:`TURN_WAIT`; at once
        when one ended after the mark ``since``): a headless session takes its next words
        once its turn is over. A frozen one is thawed by the follow-up instead."""
        launcher = self.launcher

        async def now() -> bool:
            return not await launcher.is_running(agent) or await launcher.is_frozen(agent)

        await launcher.turns.over(agent, within=TURN_WAIT, since=since, now=now)
