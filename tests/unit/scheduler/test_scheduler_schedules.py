"""Tests for FleetScheduler.add_cron and scheduler.schedule_job: cron jobs by import path, the
made-up first run, the job that hands its schedule to the context's runner, and each run's
identity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.context import JobContext
from scheduler.errors import CronError, SchedulerError
from scheduler.jobs import FleetScheduler
from scheduler.schedule_job import (
    MISFIRE_GRACE,
    SCHEDULE_JOB_REF,
    due_time,
    event_id,
    job_id,
    register,
)
from tests.fakes.doubles.job_context import job_context

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Runner:
    """Records the schedules it was asked to run."""

    def __init__(self) -> None:
        self.ran: list[int] = []
        self.ran_once = asyncio.Event()

    async def run_schedule(self, schedule_id: int) -> str | None:
        self.ran.append(schedule_id)
        self.ran_once.set()
        return "ok"


@pytest.fixture
def runner() -> Runner:
    return Runner()


@pytest.fixture
async def scheduler_schedules_scheduler(
    runner: Runner,
) -> AsyncIterator[FleetScheduler[JobContext]]:
    made: FleetScheduler[JobContext] = FleetScheduler()
    made.start(job_context(scheduler=made, schedules=runner))
    yield made
    await made.shutdown()


async def test_a_registered_schedule_is_a_cron_job_that_runs_its_runner(
    scheduler_schedules_scheduler: FleetScheduler[JobContext], runner: Runner
) -> None:
    """register() adds `schedule-<id>` calling run_schedule by import path with plain data;
    run_now runs it through the context's runner."""
    register(scheduler_schedules_scheduler, 4, "0 2 * * *", timezone=UTC, created_at=T0, now=T0)
    job = scheduler_schedules_scheduler.job(job_id(4))
    assert (job.job_id, job.func_ref) == ("schedule-4", SCHEDULE_JOB_REF)
    assert dict(job.kwargs) == {"schedule_id": 4}
    assert job.misfire_grace_time == MISFIRE_GRACE.total_seconds() == 300
    assert await scheduler_schedules_scheduler.run_now("schedule-4") == "ok"
    assert runner.ran == [4]


async def test_a_bad_expression_is_refused_before_anything_is_scheduled(
    scheduler_schedules_scheduler: FleetScheduler[JobContext],
) -> None:
    """add_cron raises CronError for an expression it cannot read; no job is added."""
    with pytest.raises(CronError):
        scheduler_schedules_scheduler.add_cron(
            "bad",
            SCHEDULE_JOB_REF,
            "0 2 * *",
            {"schedule_id": 1},
            timezone=UTC,
            misfire_grace_time=300,
        )
    with pytest.raises(SchedulerError):
        scheduler_schedules_scheduler.job("bad")


@pytest.mark.parametrize(
    ("grace", "first"),
    [(0, None), (300, datetime(2025, 3, 1, 2, 0))],  # no grace; a naive first run
)
async def test_add_cron_refuses_what_it_cannot_honour(
    scheduler_schedules_scheduler: FleetScheduler[JobContext], grace: int, first: datetime | None
) -> None:
    """A grace time under a second and a naive first run time are programming errors."""
    with pytest.raises(ValueError):
        scheduler_schedules_scheduler.add_cron(
            "x",
            SCHEDULE_JOB_REF,
            "0 2 * * *",
            {"schedule_id": 1},
            timezone=UTC,
            misfire_grace_time=grace,
            first_run_at=first,
        )


async def test_a_missed_run_becomes_the_first_run(
    scheduler_schedules_scheduler: FleetScheduler[JobContext], runner: Runner
) -> None:
    """With a run due 2 minutes ago (within the grace time), the job runs at once, then
    follows the expression."""
    now = datetime.now(UTC)
    due = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
    cron = f"{due.minute} {due.hour} * * *"
    register(
        scheduler_schedules_scheduler,
        9,
        cron,
        timezone=UTC,
        created_at=now - timedelta(days=1),
        now=now,
    )
    await asyncio.wait_for(runner.ran_once.wait(), 5)
    assert runner.ran == [9]
    next_run = scheduler_schedules_scheduler.job(job_id(9)).next_run_at
    assert next_run is not None and next_run > now


def test_a_run_is_named_by_the_time_it_was_due() -> None:
    """A run that starts late keeps the identity of the time it was due; a run off the
    schedule (run_now) is named by its own time."""
    due = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    created = due - timedelta(days=1)
    late = due + timedelta(minutes=4, seconds=59)
    assert due_time("0 2 * * *", UTC, created_at=created, now=late) == due
    off_schedule = due + timedelta(hours=3)
    assert due_time("0 2 * * *", UTC, created_at=created, now=off_schedule) == off_schedule
    assert event_id(7, due) == "schedule:7:2025-03-01T02:00:00+00:00"
