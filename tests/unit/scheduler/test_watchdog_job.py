"""Tests for scheduler.watchdog_job: the sweep of the context's fleet, on demand and through
the scheduler."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from fleet.model import AgentSpec, AgentState, DesiredState
from fleet.names import AgentName
from fleet.watchdog.decisions import AgentView
from fleet.watchdog.verdicts import MarkStalled
from scheduler.context import JobContext
from scheduler.jobs import FleetScheduler
from scheduler.watchdog_job import WATCHDOG_JOB_ID, WATCHDOG_JOB_REF, watchdog_tick
from tests.fakes.doubles.fleet import FakeFleet
from tests.fakes.doubles.job_context import job_context

DEADLINE = 5.0  # seconds: generous, only reached when something is broken
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def silent_agent() -> AgentView:
    name = AgentName("coder-1")
    return AgentView(
        name=name,
        spec=AgentSpec(name=name, runtime="stub"),
        state=AgentState.RUNNING,
        desired=DesiredState.RUNNING,
        process_alive=True,
        run_started_at=T0,
        last_heartbeat=T0,
        last_heartbeat_kind="working",
    )


@pytest.fixture
def watchdog_job_fleet() -> FakeFleet:
    return FakeFleet(views=(silent_agent(),), now=T0 + timedelta(seconds=61))


async def test_watchdog_tick_sweeps_the_snapshot_and_applies_the_actions(
    watchdog_job_fleet: FakeFleet,
) -> None:
    """watchdog_tick judges the fleet's snapshot at its `now` and hands the actions back."""
    expected = [MarkStalled(AgentName("coder-1"), "no heartbeat or output for 61s (timeout 60s)")]
    assert await watchdog_tick(job_context(fleet=watchdog_job_fleet)) == expected
    assert watchdog_job_fleet.applied == [expected]


async def test_watchdog_tick_with_nothing_to_do_applies_nothing(
    watchdog_job_fleet: FakeFleet,
) -> None:
    """A quiet sweep does not call the supervisor at all."""
    watchdog_job_fleet.now = T0 + timedelta(seconds=10)
    assert await watchdog_tick(job_context(fleet=watchdog_job_fleet)) == []
    assert watchdog_job_fleet.applied == []


async def test_watchdog_job_runs_on_demand_through_the_scheduler(
    scheduler: FleetScheduler[JobContext], watchdog_job_fleet: FakeFleet
) -> None:
    """The watchdog job, added by its import path, runs via run_now and returns its actions."""
    scheduler.add_interval(WATCHDOG_JOB_ID, WATCHDOG_JOB_REF, 30)
    scheduler.start(job_context(scheduler=scheduler, fleet=watchdog_job_fleet))
    actions = await asyncio.wait_for(scheduler.run_now(WATCHDOG_JOB_ID), DEADLINE)
    assert actions == watchdog_job_fleet.applied[0] and len(actions) == 1
