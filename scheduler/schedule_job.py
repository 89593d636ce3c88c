"""Operator schedules as APScheduler jobs: the job that fires one, and how each is registered.

An operator's schedule (``schedule add "0 2 * * *" spawn reviewer …``) is a row in the
ledger's ``schedules`` table and, while Fleetwarden runs, one cron job with the id
``schedule-<id>`` that calls :func:`run_schedule` with the schedule's id. The context's
:class:`~scheduler.context.ScheduleRunner` — in the bot, which owns the router — does the
rest: it runs the stored command as its creator, through the same path as a typed command.

**Missed runs and coalescing.** Each job is coalesced and runs one instance at a time, with
a misfire grace time of :data:`MISFIRE_GRACE` (5 minutes): a run that cannot start within 5
minutes of its time (the loop was blocked, the host slept) is skipped, and runs that piled up
become one. A run missed while Fleetwarden was *down* is made up once at start when it fell
within the grace time before the start (:func:`scheduler.cron.missed_run`); older ones are
not. Each run carries a synthetic event id, ``schedule:<id>:<the time it was due>``, claimed
in the ledger like a chat event, so a run made up after a restart that had in fact already
happened — or any other double fire — is never carried out twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Final

from scheduler.context import JobContext
from scheduler.cron import cron_trigger, missed_run
from scheduler.jobs import FleetScheduler

SCHEDULE_JOB_REF: Final = "scheduler.schedule_job:run_schedule"
MISFIRE_GRACE: Final = timedelta(minutes=5)


def job_id(schedule_id: int) -> str:
    """The scheduler's id for the job of schedule ``schedule_id``."""
    return f"schedule-{schedule_id}"


def event_id(schedule_id: int, due: datetime) -> str:
    """The synthetic chat event id of the run of ``schedule_id`` due at ``due``: one per run,
    so claiming it in the ledger dedups a double fire."""
    return f"schedule:{schedule_id}:{due.isoformat()}"


async def run_schedule(ctx: JobContext, schedule_id: int) -> str | None:
    """The job: run schedule ``schedule_id`` with the context's runner."""
    return await ctx.waiting.schedules.run_schedule(schedule_id)


def register(
    scheduler: FleetScheduler[JobContext],
    schedule_id: int,
    cron: str,
    *,
    timezone: tzinfo,
    created_at: datetime,
    now: datetime,
) -> None:
    """Add (or replace) the job of one schedule; a run missed within the grace time before
    ``now`` (and after ``created_at``) is made up as its first run."""
    missed = missed_run(
        cron_trigger(cron, timezone), created_at=created_at, now=now, grace=MISFIRE_GRACE
    )
    scheduler.add_cron(
        job_id(schedule_id),
        SCHEDULE_JOB_REF,
        cron,
        {"schedule_id": schedule_id},
        timezone=timezone,
        misfire_grace_time=int(MISFIRE_GRACE.total_seconds()),
        first_run_at=missed,
    )


def due_time(cron: str, timezone: tzinfo, *, created_at: datetime, now: datetime) -> datetime:
    """The time the run starting at ``now`` was due: the schedule's latest fire time within
    the grace time (plus a minute's slack for the time it took to get here), else ``now``
    itself — a run asked for off the schedule, such as ``run_now``."""
    found = missed_run(
        cron_trigger(cron, timezone),
        created_at=created_at,
        now=now,
        grace=MISFIRE_GRACE + timedelta(minutes=1),
    )
    return found if found is not None else now
