"""The agent's side of forge work: the scope of its forge run for the forge door, and what
the door's allowed calls do — post its comment, change its pull request's description,
open its pull request, take its ``done`` — each audited and each a sign of life for the
watchdog. After ``done``, once the agent's turn is over (a headless CLI's process ends; a
live one is ended or frozen as the forge's ``on_done`` says), its work is published."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final

from fleet.errors import FleetwardenError
from fleet.forge.door.door import DoorRefusal, DoorScope
from fleet.forge.launcher import ForgeLauncher
from fleet.forge.model import ForgeApi, ForgeApiError
from fleet.forge.posts.publish import Publisher
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState, Slug
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.repos.landing.messages import one_line
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

TURN_WAIT: Final = 120.0
"""Seconds a ``done`` waits for the agent's turn to end (its run's end, or its live session
waiting for the next turn: :class:`~fleet.supervisor.turns.Turns`) before ``on_done`` ends
or freezes it."""
SUMMARY_CAP: Final = 4000
REFUSAL_CAP: Final = 300
"""Characters of the door's refusal ``done`` quotes back."""

IssueLock = Callable[[str, Slug, int], asyncio.Lock]
"""The lock of a forge's issue (forge work's: :meth:`~fleet.forge.runs.work.ForgeWork.lock`),
held while a run on it is acted on."""
Spawn = Callable[[Coroutine[Any, Any, None], str], None]
"""Runs work in the background, kept until it ends (forge work's:
:meth:`~fleet.forge.runs.work.ForgeWork.spawn`, so a stop waits for it)."""


class ForgeDesk:
    """The forge door's :class:`~fleet.forge.door.door.DoorActions` over forge work."""

    def __init__(
        self,
        *,
        forges: Mapping[str, ForgeEntry],
        apis: Mapping[str, ForgeApi],
        forge: ForgeStore,
        publisher: Publisher,
        launcher: ForgeLauncher,
        clock: Clock,
        lock: IssueLock,
        spawn: Spawn,
        turn_wait: float = TURN_WAIT,
    ) -> None:
        """``lock``: an issue's lock (forge work's); ``spawn``: runs work in the background
        (forge work's, so a stop waits for it)."""
        self._forges = forges
        self._apis = apis
        self._forge = forge
        self._publisher = publisher
        self._launcher = launcher
        self._clock = clock
        self._lock = lock
        self._spawn = spawn
        self._turn_wait = turn_wait
        self.pending: set[int] = set()  # forge runs whose done is being published

    def api(self, forge: str) -> ForgeApi:
        return self._apis[forge]

    async def scope_of(self, agent: str) -> DoorScope | None:
        """What ``agent``'s forge run may touch now; None without one under way."""
        record = await self._forge.agent_forge_run(agent)
        if record is None or ForgeRunState(record.state).is_over:
            return None
        return DoorScope(
            run_key=record.id,
            forge=record.forge,
            repo=record.slug,
            issue=record.issue,
            pull=record.pull,
            branch=record.branch,
        )

    async def _record(self, scope: DoorScope) -> ForgeRunRecord:
        record = await self._forge.forge_run(scope.run_key)
        if record is None or record.ended_at is not None:
            raise DoorRefusal("refused: this forge run is over")
        return record

    async def comment(self, scope: DoorScope, number: int, body: str, *, pull: bool = False) -> str:
        record = await self._record(scope)
        url = await self._publisher.posts.comment(record, number, body, pull=pull)
        return f"commented: {url}"

    async def describe(self, scope: DoorScope, body: str) -> str:
        url = await self._publisher.posts.describe(await self._record(scope), body)
        return f"described: {url}"

    async def open_pull(self, scope: DoorScope, title: str, body: str, draft: bool) -> str:
        record = await self._record(scope)
        try:
            pull = await self._publisher.open_pull(
                record, title=title, text=body, draft=draft or self._publisher.draft_of(record)
            )
        except ForgeApiError:
            raise  # the door answers 502, naming nothing of the forge's API
        except FleetwardenError as exc:  # the branch could not be pushed: why, in our words
            raise DoorRefusal(f"refused: {exc}") from None
        return f"pull request #{pull.number} is open: {pull.url}"

    async def done(self, scope: DoorScope, status: str, summary: str) -> str:
        record = await self._record(scope)
        # Its turn is under way (it asks from inside it, and waits for the answer): the end
        # of that turn is heard after this mark, however late its wait below begins.
        since = self._launcher.turns.ends(record.agent)
        await self._forge.update_forge_run(
            record.id,
            done_signal="agent",
            done_status=status,
            summary=summary[:SUMMARY_CAP],
            activity_at=self._clock.now(),
        )
        refused = None
        if status == "ok":  # pushed as its run ends: its summary says what the upstream has
            await self._launcher.push_at_end(record.agent)
            refused = await self._launcher.push_refused(record.agent, record.line_id)
        self._spawn(self.after_done(record.id, since=since), f"publish forge run {record.id}")
        if refused is not None:
            return refused_words(refused, record.pull)
        if status == "ok" and record.pull is not None:
            return (
                "done: once this turn ends, your branch is pushed and the pull request "
                f"#{record.pull} takes the new commits"
            )
        if status == "ok":
            return "done: once this turn ends, your branch is pushed and its pull request opened"
        return "done: your summary is posted on the issue once this turn ends"

    async def audit(
        self, scope: DoorScope | None, agent: str, op: str, allowed: bool, detail: str
    ) -> None:
        key = scope.run_key if scope is not None else None
        await self._forge.audit_forge(key, agent, op, allowed, detail)
        if key is not None:
            await self._forge.update_forge_run(key, activity_at=self._clock.now())

    async def _still_done(self, key: int) -> bool:
        fresh = await self._forge.forge_run(key)
        return (
            fresh is not None
            and fresh.ended_at is None
            and ForgeRunState(fresh.state) is ForgeRunState.WORKING
            and fresh.done_signal == "agent"
        )

    async def after_done(self, key: int, *, since: int | None = None) -> None:
        """Wait for the agent's turn to end, then publish what it did (once). ``since``: the
        mark of its turns' ends (:meth:`~fleet.supervisor.turns.Turns.ends`) read during
        the turn that said ``done``: an end heard after it is that turn's."""
        if key in self.pending:
            return
        self.pending.add(key)
        try:
            record = await self._forge.forge_run(key)
            if record is None:
                return
            launcher = self._launcher

            async def ended() -> bool:
                return not await launcher.is_running(record.agent)

            await launcher.turns.over(record.agent, within=self._turn_wait, since=since, now=ended)
            async with self._lock(record.forge, record.slug, record.issue):
                # Under the issue's lock: a follow-up is either before (no done any more)
                # or after (it thaws what is frozen here).
                if not await self._still_done(key):
                    return  # a follow-up came meanwhile: the session goes on
                if await launcher.is_running(record.agent):
                    entry = self._forges[record.forge]
                    if entry.on_done == "end":
                        await launcher.stop(record.agent, by="its done", line_id=record.line_id)
                    else:
                        await launcher.freeze(record.agent, by="its done")
                fresh = await self._forge.forge_run(key)
                if fresh is None:
                    return
                await self._publisher.publish(fresh)
        finally:
            self.pending.discard(key)


def refused_words(why: str, pull: int | None) -> str:
    """``done``'s answer when the git door refused the run's last push and nothing has
    reached its branch since: what the branch lacks, and the way on."""
    where = f"pull request #{pull}" if pull is not None else "pull request, once opened,"
    said = one_line(why, REFUSAL_CAP).rstrip(".")
    return (
        f"done noted, but the git door refused your last push: {said}. "
        f"Those commits are not on your branch, and the {where} will not have them. Fix "
        "what it says (amend or rewrite those commits), push again, then run `fw-forge done` "
        "again."
    )
