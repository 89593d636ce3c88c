"""Tests for the looks as jobs (scheduler.looking_jobs, registered by
bot.app.phases.serving.jobs): each job runs its part's look, and nothing without the part;
each part present is registered at its interval, run by the scheduler, and nothing of it
runs once the scheduler stops."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.app.phases.serving.jobs import add_looking_jobs
from bot.dashboard.serving.live import SESSIONS_EVERY
from fleet.hosts.service import PROBE_EVERY
from fleet.sandbox.egress.refusals import FLUSH_INTERVAL
from scheduler.context import JobContext, Looking
from scheduler.jobs import FleetScheduler
from scheduler.looking_jobs import (
    FEED_JOB_ID,
    HOSTS_JOB_ID,
    REFUSALS_JOB_ID,
    SESSIONS_JOB_ID,
    feed_look,
    probe_hosts,
    refresh_sessions,
    tell_refusals,
)
from tests.fakes.doubles.job_context import job_context

DEADLINE = 5.0


@dataclass
class Parts:
    """Every looked-at part in one, counting its looks; ``looked`` set at the first."""

    done: list[str] = field(default_factory=list)
    looked: asyncio.Event = field(default_factory=asyncio.Event)

    def _did(self, what: str) -> None:
        self.done.append(what)
        self.looked.set()

    async def look(self) -> None:
        self._did("feed")

    async def refresh_sessions(self) -> None:
        self._did("sessions")

    async def probe_up(self) -> None:
        self._did("hosts")

    async def tell(self) -> None:
        self._did("refusals")


async def test_each_job_runs_its_look_and_none_without_the_part() -> None:
    """Each job calls its own part's look once; with no part, each does nothing."""
    parts = Parts()
    ctx = job_context(looking=Looking(feed=parts, sessions=parts, hosts=parts, refusals=parts))
    for job in (feed_look, refresh_sessions, probe_hosts, tell_refusals):
        await job(ctx)
    assert parts.done == ["feed", "sessions", "hosts", "refusals"]
    bare = job_context(looking=Looking())
    for job in (feed_look, refresh_sessions, probe_hosts, tell_refusals):
        await job(bare)


async def test_each_part_present_is_looked_at_on_its_interval() -> None:
    """The feed at its poll, the sessions, the hosts and the refusals at their own
    intervals; a part the app lacks gets no job."""
    scheduler: FleetScheduler[JobContext] = FleetScheduler()
    parts = Parts()
    add_looking_jobs(
        scheduler, Looking(feed=parts, sessions=parts, hosts=parts, refusals=parts), feed_poll=0.5
    )
    seconds = {job.job_id: job.seconds for job in scheduler.jobs()}
    assert seconds == {
        FEED_JOB_ID: 0.5,
        SESSIONS_JOB_ID: SESSIONS_EVERY,
        HOSTS_JOB_ID: PROBE_EVERY,
        REFUSALS_JOB_ID: FLUSH_INTERVAL,
    }
    bare: FleetScheduler[JobContext] = FleetScheduler()
    add_looking_jobs(bare, Looking(feed=parts), feed_poll=1.0)
    assert [job.job_id for job in bare.jobs()] == [FEED_JOB_ID]
    await scheduler.shutdown()
    await bare.shutdown()


async def test_the_scheduler_looks_and_nothing_looks_once_it_stops() -> None:
    """The feed's look runs on the scheduler; after shutdown no look runs again and no
    task of it is left."""
    scheduler: FleetScheduler[JobContext] = FleetScheduler()
    parts = Parts()
    looking = Looking(feed=parts)
    add_looking_jobs(scheduler, looking, feed_poll=0.05)
    scheduler.start(job_context(scheduler=scheduler, looking=looking))
    try:
        await asyncio.wait_for(parts.looked.wait(), DEADLINE)
    finally:
        await scheduler.shutdown()
    count = len(parts.done)
    await asyncio.sleep(0.2)
    assert len(parts.done) == count
    assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()
