"""The spawn queue's sweep as an interval job: the safety net that starts a queued launch
once a slot is free or its ``not_before`` has passed, should no fleet event have said so
(the queue itself is the admission's :class:`fleet.supervisor.admission.queue.LaunchQueue`,
kept in the ledger)."""

from __future__ import annotations

from typing import Final

from scheduler.context import JobContext

SPAWN_QUEUE_JOB_ID: Final = "spawn-queue"
SPAWN_QUEUE_JOB_REF: Final = "scheduler.queue_job:sweep_spawn_queue"
SWEEP_EVERY: Final = 15.0
"""Seconds between sweeps: how late a deferred launch may start after its time."""


async def sweep_spawn_queue(ctx: JobContext) -> int:
    """Start what may start now; how many were started."""
    return await ctx.waiting.queue.sweep()
