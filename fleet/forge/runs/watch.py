"""The forge runs' regular round (a queued run waits in the fleet's spawn queue, which
starts it): a ``done`` published once its turn ended (after a restart too), a pull request
that could not be opened tried again every
:data:`~fleet.forge.posts.unpublished.RETRY_MINUTES` minutes, the watchdog's word on a run
that went silent without ``done`` for its forge's ``done_timeout_minutes``, and every
status comment brought up to date (spend, approvals waiting)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

from fleet.forge.api.rest import ForgeRateLimited
from fleet.forge.events.holds import ForgeHolds
from fleet.forge.launcher import ForgeLauncher
from fleet.forge.posts.publish import Publisher
from fleet.forge.posts.unpublished import RETRY_MINUTES
from fleet.forge.runs.desk import ForgeDesk
from fleet.forge.runs.starts import RunStarts
from fleet.forge.runs.work import ForgeWork
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

INTERVAL: Final = 15.0
"""Seconds between rounds."""


class ForgeWatch:
    """Goes over the live forge runs, a round at a time (:meth:`tick`; the app runs one
    every :data:`INTERVAL` seconds)."""

    def __init__(
        self,
        work: ForgeWork,
        desk: ForgeDesk,
        *,
        forges: Mapping[str, ForgeEntry],
        forge: ForgeStore,
        launcher: ForgeLauncher,
        publisher: Publisher,
        holds: ForgeHolds,
        starts: RunStarts,
        clock: Clock,
    ) -> None:
        """``work``: forge work, whose issues' locks, background and quiet forges the round
        shares; ``desk``: the forge door's, which publishes a ``done``."""
        self._work = work
        self._desk = desk
        self._forges = forges
        self._forge = forge
        self._launcher = launcher
        self._publisher = publisher
        self._holds = holds
        self._starts = starts
        self._clock = clock
        self._tried: dict[int, datetime] = {}  # unpublished runs: when last tried (or said)

    async def tick(self) -> None:
        """One round over the live forge runs."""
        work = self._work
        now = self._clock.now()
        records = await self._forge.forge_runs()
        live = {r.id for r in records if ForgeRunState(r.state) is ForgeRunState.UNPUBLISHED}
        self._tried = {key: at for key, at in self._tried.items() if key in live}
        tried: set[str] = set()  # agents whose queued run this round tried again
        for record in records:
            if work.quiet(record.forge):  # rate limited: left alone until it lifts
                continue
            try:
                if ForgeRunState(record.state) is ForgeRunState.QUEUED:
                    await self._unplaced(record, tried)
                else:
                    await self._round(record, now)
            except ForgeRateLimited as exc:
                self._holds.back_off(record.forge, exc)

    async def _unplaced(self, record: ForgeRunRecord, tried: set[str]) -> None:
        """A run queued on its issue with no place in the spawn queue (its launch refused,
        or its start from the queue failed: a budget, its quote, the forge unreachable) is
        launched again, as its first launch was — started, placed in the spawn queue, or
        kept queued saying why; an agent's oldest such run once a round."""
        if record.agent in tried or await self._launcher.queued(record.id):
            return
        tried.add(record.agent)
        async with self._work.lock(record.forge, record.slug, record.issue):
            fresh = await self._forge.forge_run(record.id)
            if fresh is None or fresh.ended_at is not None:
                return
            if ForgeRunState(fresh.state) is not ForgeRunState.QUEUED:
                return  # started meanwhile
            outcome = await self._starts.launch(fresh)
        log.info("forge run %d of %s, queued: %s", record.id, record.agent, outcome)

    async def _round(self, record: ForgeRunRecord, now: datetime) -> None:
        """One forge run's turn of the round."""
        work = self._work
        state = ForgeRunState(record.state)
        if state is ForgeRunState.UNPUBLISHED:
            await self._retry(record, now)
        elif state is ForgeRunState.WORKING:
            running = await self._launcher.is_running(record.agent)
            if record.done_signal == "agent" and not running:
                if record.id not in self._desk.pending:
                    work.spawn(self._desk.after_done(record.id), f"publish {record.id}")
            elif record.done_signal is None and not running:
                minutes = self._forges[record.forge].done_timeout_minutes
                since = record.activity_at or record.started_at
                if now - since >= timedelta(minutes=minutes):
                    async with work.lock(record.forge, record.slug, record.issue):
                        fresh = await self._forge.forge_run(record.id)
                        if fresh is not None and fresh.done_signal is None:
                            await self._publisher.watchdog(fresh, minutes)
            # Its spend, its asks and what it does move on without an event.
            await self._publisher.refresh(record.id)

    async def _retry(self, record: ForgeRunRecord, now: datetime) -> None:
        """Open the pull request of a run left ``unpublished``, every few minutes (its first
        refusal was just said: the first try waits too)."""
        work = self._work
        tried = self._tried.setdefault(record.id, now)
        if now - tried < timedelta(minutes=RETRY_MINUTES):
            return
        self._tried[record.id] = now
        async with work.lock(record.forge, record.slug, record.issue):
            fresh = await self._forge.forge_run(record.id)
            if fresh is None or ForgeRunState(fresh.state) is not ForgeRunState.UNPUBLISHED:
                return  # `pr`, or a follow-up, came first
            if await self._publisher.retry(fresh):
                self._tried.pop(record.id, None)
                log.info("forge run %d: its pull request is open now", record.id)
