"""Deferred launches in the bot: arming a ``spawn`` that a queued budget turned away, and
running it again when its time comes (the job is :mod:`scheduler.deferred`).

The run goes through :meth:`bot.router.Router.run_as` as the same sender, in the same room:
the ACL as of then, audited with source ``deferred``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from bot.request import Deferrer
from bot.router import Delegated, Router
from connectors.base import Connector, InboundMessage, RoomId, UserId
from fleet.clock import Clock
from scheduler.context import JobContext
from scheduler.deferred import DEFERRED_JOB_REF
from scheduler.jobs import FleetScheduler

log = logging.getLogger(__name__)


def deferrer(scheduler: FleetScheduler[JobContext]) -> Deferrer:
    """What the ``spawn`` handler calls to arm its command to run again at a time."""

    async def defer(message: InboundMessage, at: datetime) -> None:
        job = f"deferred-{uuid.uuid4().hex[:12]}"
        scheduler.add_date(
            job,
            DEFERRED_JOB_REF,
            at,
            {
                "connector": message.connector,
                "sender": message.sender,
                "room": message.room,
                "text": message.text,
                "job": job,
            },
        )

    return defer


class DeferredRuns:
    """Runs a deferred command again: the job context's deferred runner."""

    def __init__(
        self,
        *,
        router: Router,
        connector_named: Callable[[str], Connector | None],
        clock: Clock,
    ) -> None:
        """``connector_named`` finds a running connector by name."""
        self._router = router
        self._connector_named = connector_named
        self._clock = clock

    async def run_deferred(
        self, *, connector: str, sender: str, room: str, text: str, job: str
    ) -> None:
        """Run ``text`` as ``sender`` in ``room`` on ``connector``, if it still runs."""
        target = self._connector_named(connector)
        if target is None:
            log.warning("a deferred command could not run: connector %s is gone", connector)
            return
        run = Delegated(
            sender=UserId(sender),
            room=RoomId(room),
            text=text,
            event_id=f"{job}:run",
            source="deferred",
            at=self._clock.now(),
            heading="Deferred launch, tried again:",
        )
        await self._router.run_as(target, run)
