"""Tests for scheduler.jobs: APScheduler 3.x on the test's loop, jobs by import path, the
context registry and the watchdog job. No wall-clock sleeps: events awaited with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from fleet.model import AgentSpec, AgentState, DesiredState
from fleet.names import AgentName
from scheduler.jobs import (
    WATCHDOG_JOB_ID,
    WATCHDOG_JOB_REF,
    FleetScheduler,
    JobAlreadyRunning,
    MissingContext,
    SchedulerError,
    SchedulerState,
    UnknownJob,
    context,
    register_context,
    unregister_context,
    watchdog_tick,
)
from scheduler.watchdog import (
    Action,
    AgentView,
    MarkStalled,
    WatchdogDefaults,
    WatchdogSnapshot,
)

DEADLINE = 5.0  # seconds: generous, only reached when something is broken
HERE = __name__  # jobs below are referenced as f"{HERE}:name"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


# --- Jobs referenced by import path ---------------------------------------------------------


@dataclass
class Probe:
    """What the test jobs report to: runs counted, events set."""

    runs: int = 0
    ran: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    enough: int = 1  # `ran` is set after this many runs


async def count(probe: str, result: str = "done") -> str:
    target = context(probe)
    assert isinstance(target, Probe)
    target.runs += 1
    if target.runs >= target.enough:
        target.ran.set()
    return result


async def block(probe: str) -> None:
    target = context(probe)
    assert isinstance(target, Probe)
    target.started.set()
    try:
        await target.release.wait()
    except asyncio.CancelledError:
        target.cancelled.set()
        raise


async def fail() -> None:
    raise RuntimeError("job broke")


def not_async() -> None:
    """A plain function: jobs must be async."""


# --- Fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def probe() -> Iterator[Probe]:
    made = Probe()
    register_context("probe", made)
    yield made
    unregister_context("probe")


@pytest.fixture
async def scheduler() -> AsyncIterator[FleetScheduler]:
    made = FleetScheduler()
    yield made
    await made.shutdown()


async def within_deadline(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), DEADLINE)


# --- Running jobs ---------------------------------------------------------------------------------


async def test_interval_job_fires(scheduler: FleetScheduler, probe: Probe) -> None:
    """A job added by import path runs on its interval once the scheduler has started."""
    probe.enough = 3
    scheduler.add_interval("tick", f"{HERE}:count", 0.01, {"probe": "probe"})
    scheduler.start()
    await within_deadline(probe.ran)
    assert probe.runs >= 3


async def test_run_now_runs_the_job_and_returns_its_result(
    scheduler: FleetScheduler, probe: Probe
) -> None:
    """run_now runs a job at once (not waiting an hour) and returns what it returned."""
    scheduler.add_interval("hourly", f"{HERE}:count", 3600, {"probe": "probe", "result": "ok"})
    scheduler.start()
    before = datetime.now(UTC)
    assert await asyncio.wait_for(scheduler.run_now("hourly"), DEADLINE) == "ok"
    assert probe.runs == 1
    next_run = scheduler.job("hourly").next_run_at
    assert next_run is not None and next_run >= before + timedelta(seconds=3600)


async def test_run_now_raises_what_the_job_raised(scheduler: FleetScheduler) -> None:
    """A job's exception reaches the caller of run_now."""
    scheduler.add_interval("broken", f"{HERE}:fail", 3600)
    scheduler.start()
    with pytest.raises(RuntimeError, match="job broke"):
        await asyncio.wait_for(scheduler.run_now("broken"), DEADLINE)


async def test_run_now_of_a_running_job_is_refused(scheduler: FleetScheduler, probe: Probe) -> None:
    """One instance at a time: run_now while the job runs raises JobAlreadyRunning."""
    scheduler.add_interval("slow", f"{HERE}:block", 3600, {"probe": "probe"})
    scheduler.start()
    first = asyncio.create_task(scheduler.run_now("slow"))
    await within_deadline(probe.started)
    with pytest.raises(JobAlreadyRunning):
        await asyncio.wait_for(scheduler.run_now("slow"), DEADLINE)
    probe.release.set()
    assert await asyncio.wait_for(first, DEADLINE) is None


async def test_run_now_needs_a_known_job_and_a_running_scheduler(
    scheduler: FleetScheduler,
) -> None:
    """run_now before start, or of an unknown id, raises instead of waiting forever."""
    scheduler.add_interval("later", f"{HERE}:fail", 3600)
    with pytest.raises(SchedulerError, match="new, not running"):
        await scheduler.run_now("later")
    scheduler.start()
    with pytest.raises(UnknownJob, match="no job 'nope'"):
        await scheduler.run_now("nope")


# --- Shutting down --------------------------------------------------------------------------------


async def test_shutdown_cancels_running_jobs_and_waiters(
    scheduler: FleetScheduler, probe: Probe
) -> None:
    """shutdown does not wait: the running job is cancelled, run_now callers too."""
    scheduler.add_interval("slow", f"{HERE}:block", 3600, {"probe": "probe"})
    scheduler.start()
    waiting = asyncio.create_task(scheduler.run_now("slow"))
    await within_deadline(probe.started)
    await asyncio.wait_for(scheduler.shutdown(), DEADLINE)
    await within_deadline(probe.cancelled)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, DEADLINE)
    assert scheduler.state is SchedulerState.STOPPED
    with pytest.raises(SchedulerError, match="stopped, not running"):
        await scheduler.run_now("slow")
    await scheduler.shutdown()  # again: nothing to do


async def test_shutdown_stops_the_interval(scheduler: FleetScheduler, probe: Probe) -> None:
    """After shutdown the job never runs again, while a second scheduler keeps ticking."""
    scheduler.add_interval("tick", f"{HERE}:count", 0.01, {"probe": "probe"})
    scheduler.start()
    await within_deadline(probe.ran)
    await scheduler.shutdown()
    runs = probe.runs
    # A control on the same loop: once it has ticked 5 times at the same interval, the
    # stopped scheduler would have ticked too, had it still been running.
    control = Probe(enough=5)
    register_context("control", control)
    other = FleetScheduler()
    try:
        other.add_interval("tick", f"{HERE}:count", 0.01, {"probe": "control"})
        other.start()
        await within_deadline(control.ran)
    finally:
        await other.shutdown()
        unregister_context("control")
    assert probe.runs == runs


async def test_start_is_one_shot(scheduler: FleetScheduler) -> None:
    """start() twice, or after shutdown, is a programming error."""
    scheduler.start()
    with pytest.raises(RuntimeError, match="in state running"):
        scheduler.start()


def test_start_needs_a_running_loop() -> None:
    """start() outside a running event loop raises instead of binding the wrong loop."""
    with pytest.raises(RuntimeError):
        FleetScheduler().start()


# --- How jobs are added ---------------------------------------------------------------------------


async def test_jobs_are_coalesced_one_instance_with_an_explicit_grace(
    scheduler: FleetScheduler,
) -> None:
    """Every job: coalesce, max_instances 1, misfire grace one interval (at least 1 s) or
    as given; the function is kept as its import path, the kwargs as plain data."""
    scheduler.add_interval("a", f"{HERE}:count", 30, {"probe": "p"})
    scheduler.add_interval("b", f"{HERE}:count", 0.2, {"probe": "p"})
    scheduler.add_interval("c", f"{HERE}:count", 30, {"probe": "p"}, misfire_grace_time=7)
    a, b, c = (scheduler.job(job_id) for job_id in "abc")
    assert (a.coalesce, a.max_instances, a.misfire_grace_time) == (True, 1, 30)
    assert (a.func_ref, a.seconds, dict(a.kwargs)) == (f"{HERE}:count", 30, {"probe": "p"})
    assert (b.misfire_grace_time, c.misfire_grace_time) == (1, 7)
    assert a.next_run_at is None  # not started yet
    scheduler.start()
    assert scheduler.job("a").next_run_at is not None


async def test_adding_a_job_id_again_replaces_it(scheduler: FleetScheduler) -> None:
    """Re-adding an id replaces the job (how a reload changes the interval)."""
    scheduler.add_interval("w", f"{HERE}:count", 30, {"probe": "p"})
    scheduler.add_interval("w", f"{HERE}:count", 60, {"probe": "q"})
    assert (scheduler.job("w").seconds, dict(scheduler.job("w").kwargs)) == (60, {"probe": "q"})
    scheduler.start()
    scheduler.add_interval("w", f"{HERE}:count", 90, {"probe": "r"})
    assert (scheduler.job("w").seconds, dict(scheduler.job("w").kwargs)) == (90, {"probe": "r"})
    scheduler.remove("w")
    with pytest.raises(UnknownJob):
        scheduler.job("w")
    with pytest.raises(UnknownJob):
        scheduler.remove("w")


@pytest.mark.parametrize(
    ("ref", "kwargs", "error", "match"),
    [
        ("count", {}, ValueError, "not of the form 'module:function'"),
        (f"{HERE}:nothing_here", {}, ValueError, "does not resolve"),
        ("no_such_module_x:run", {}, ValueError, "does not resolve"),
        (f"{HERE}:not_async", {}, ValueError, "must be an async def"),
        (f"{HERE}:count", {"probe": object()}, TypeError, "not plain data"),
        (f"{HERE}:count", {"prob": "p"}, TypeError, "does not take these arguments"),
        (f"{HERE}:count", {}, TypeError, "does not take these arguments"),
    ],
)
def test_bad_jobs_are_refused_when_added(
    ref: str, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    """A typo in the import path or the arguments fails at add time, not at the first run."""
    with pytest.raises(error, match=match):
        FleetScheduler().add_interval("x", ref, 30, kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("seconds", "grace"), [(0, None), (-1, None), (30, 0)])
def test_bad_interval_or_grace_is_refused(seconds: float, grace: int | None) -> None:
    """Intervals must be positive; a misfire grace, at least 1 second."""
    with pytest.raises(ValueError, match=r"interval|misfire"):
        FleetScheduler().add_interval(
            "x", f"{HERE}:count", seconds, {"probe": "p"}, misfire_grace_time=grace
        )


# --- The context registry -------------------------------------------------------------------------


def test_context_registry_round_trip() -> None:
    """register_context makes an object available by name until it is unregistered."""
    marker = object()
    register_context("thing", marker)
    try:
        assert context("thing") is marker
        register_context("thing", marker)  # the same object again is fine
        with pytest.raises(SchedulerError, match="already registered"):
            register_context("thing", object())
    finally:
        unregister_context("thing")
    with pytest.raises(MissingContext, match="no context 'thing' is registered"):
        context("thing")
    unregister_context("thing")  # unknown: no error


# --- The watchdog job -----------------------------------------------------------------------------


@dataclass
class FakeFleet:
    """A WatchedFleet: a fixed snapshot; records what it was asked to apply."""

    views: tuple[AgentView, ...]
    now: datetime
    applied: list[list[Action]] = field(default_factory=list)

    async def watchdog_snapshot(self) -> WatchdogSnapshot:
        return WatchdogSnapshot(self.views, self.now, WatchdogDefaults(heartbeat_timeout=60))

    async def apply_watchdog(self, actions: Sequence[Action]) -> None:
        self.applied.append(list(actions))


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
def fleet() -> Iterator[FakeFleet]:
    made = FakeFleet((silent_agent(),), T0 + timedelta(seconds=61))
    register_context("test-fleet", made)
    yield made
    unregister_context("test-fleet")


async def test_watchdog_tick_sweeps_the_snapshot_and_applies_the_actions(
    fleet: FakeFleet,
) -> None:
    """watchdog_tick judges the fleet's snapshot at its `now` and hands the actions back."""
    expected = [MarkStalled(AgentName("coder-1"), "no heartbeat or output for 61s (timeout 60s)")]
    assert await watchdog_tick("test-fleet") == expected
    assert fleet.applied == [expected]


async def test_watchdog_tick_with_nothing_to_do_applies_nothing(fleet: FakeFleet) -> None:
    """A quiet sweep does not call the supervisor at all."""
    fleet.now = T0 + timedelta(seconds=10)
    assert await watchdog_tick("test-fleet") == []
    assert fleet.applied == []


async def test_watchdog_job_runs_on_demand_through_the_scheduler(
    scheduler: FleetScheduler, fleet: FakeFleet
) -> None:
    """The watchdog job, added by its import path, runs via run_now and returns its actions."""
    scheduler.add_interval(WATCHDOG_JOB_ID, WATCHDOG_JOB_REF, 30, {"fleet": "test-fleet"})
    scheduler.start()
    actions = await asyncio.wait_for(scheduler.run_now(WATCHDOG_JOB_ID), DEADLINE)
    assert actions == fleet.applied[0] and len(actions) == 1


async def test_watchdog_tick_refuses_a_context_that_is_not_a_fleet() -> None:
    """A name registered to something else is a clear error, not an AttributeError."""
    register_context("not-a-fleet", object())
    try:
        with pytest.raises(SchedulerError, match="is a object, not a fleet"):
            await watchdog_tick("not-a-fleet")
    finally:
        unregister_context("not-a-fleet")
