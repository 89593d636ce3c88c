"""Tests for scheduler.jobs: APScheduler 3.x on the test's loop, jobs by import path, each run
handed the scheduler's context. No wall-clock sleeps: events awaited with a deadline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.errors import JobAlreadyRunning, SchedulerError, UnknownJob
from scheduler.jobs import FleetScheduler, SchedulerState

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


async def count(target: Probe, result: str = "done") -> str:
    target.runs += 1
    if target.runs >= target.enough:
        target.ran.set()
    return result


async def block(target: Probe) -> None:
    target.started.set()
    try:
        await target.release.wait()
    except asyncio.CancelledError:
        target.cancelled.set()
        raise


async def fail(target: Probe) -> None:
    raise RuntimeError("job broke")


def not_async(target: Probe) -> None:
    """A plain function: jobs must be async."""


async def no_context() -> None:
    """Takes no context: every job's first argument is the context."""


# --- Fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def probe() -> Probe:
    return Probe()


async def within_deadline(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), DEADLINE)


# --- Running jobs ---------------------------------------------------------------------------------


async def test_interval_job_fires(scheduler: FleetScheduler[Probe], probe: Probe) -> None:
    """A job added by import path runs on its interval once the scheduler has started."""
    probe.enough = 3
    scheduler.add_interval("tick", f"{HERE}:count", 0.01)
    scheduler.start(probe)
    await within_deadline(probe.ran)
    assert probe.runs >= 3


async def test_an_interval_job_may_first_run_at_once(
    scheduler: FleetScheduler[Probe], probe: Probe
) -> None:
    """first_run_at now: an hourly job runs at once, then an hour on; a naive time is
    refused."""
    scheduler.add_interval("hourly", f"{HERE}:count", 3600, first_run_at=datetime.now(UTC))
    scheduler.start(probe)
    await within_deadline(probe.ran)
    assert probe.runs == 1
    next_run = scheduler.job("hourly").next_run_at
    assert next_run is not None and next_run > datetime.now(UTC) + timedelta(seconds=3000)
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduler.add_interval("x", f"{HERE}:count", 30, first_run_at=datetime(2025, 3, 1))


async def test_run_now_runs_the_job_and_returns_its_result(
    scheduler: FleetScheduler[Probe], probe: Probe
) -> None:
    """run_now runs a job at once (not waiting an hour) and returns what it returned."""
    scheduler.add_interval("hourly", f"{HERE}:count", 3600, {"result": "ok"})
    scheduler.start(probe)
    before = datetime.now(UTC)
    assert await asyncio.wait_for(scheduler.run_now("hourly"), DEADLINE) == "ok"
    assert probe.runs == 1
    next_run = scheduler.job("hourly").next_run_at
    assert next_run is not None and next_run >= before + timedelta(seconds=3600)


async def test_run_now_raises_what_the_job_raised(scheduler: FleetScheduler[Probe]) -> None:
    """A job's exception reaches the caller of run_now."""
    scheduler.add_interval("broken", f"{HERE}:fail", 3600)
    scheduler.start(Probe())
    with pytest.raises(RuntimeError, match="job broke"):
        await asyncio.wait_for(scheduler.run_now("broken"), DEADLINE)


async def test_run_now_of_a_running_job_is_refused(
    scheduler: FleetScheduler[Probe], probe: Probe
) -> None:
    """One instance at a time: run_now while the job runs raises JobAlreadyRunning."""
    scheduler.add_interval("slow", f"{HERE}:block", 3600)
    scheduler.start(probe)
    first = asyncio.create_task(scheduler.run_now("slow"))
    await within_deadline(probe.started)
    with pytest.raises(JobAlreadyRunning):
        await asyncio.wait_for(scheduler.run_now("slow"), DEADLINE)
    probe.release.set()
    assert await asyncio.wait_for(first, DEADLINE) is None


async def test_run_now_needs_a_known_job_and_a_running_scheduler(
    scheduler: FleetScheduler[Probe],
) -> None:
    """run_now before start, or of an unknown id, raises instead of waiting forever."""
    scheduler.add_interval("later", f"{HERE}:fail", 3600)
    with pytest.raises(SchedulerError, match="new, not running"):
        await scheduler.run_now("later")
    scheduler.start(Probe())
    with pytest.raises(UnknownJob, match="no job 'nope'"):
        await scheduler.run_now("nope")


# --- Shutting down --------------------------------------------------------------------------------


async def test_shutdown_cancels_running_jobs_and_waiters(
    scheduler: FleetScheduler[Probe], probe: Probe
) -> None:
    """shutdown does not wait: the running job is cancelled, run_now callers too."""
    scheduler.add_interval("slow", f"{HERE}:block", 3600)
    scheduler.start(probe)
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


async def test_shutdown_stops_the_interval(scheduler: FleetScheduler[Probe], probe: Probe) -> None:
    """After shutdown the job never runs again, while a second scheduler keeps ticking."""
    scheduler.add_interval("tick", f"{HERE}:count", 0.01)
    scheduler.start(probe)
    await within_deadline(probe.ran)
    await scheduler.shutdown()
    runs = probe.runs
    # A control on the same loop: once it has ticked 5 times at the same interval, the
    # stopped scheduler would have ticked too, had it still been running.
    control = Probe(enough=5)
    other: FleetScheduler[Probe] = FleetScheduler()
    try:
        other.add_interval("tick", f"{HERE}:count", 0.01)
        other.start(control)
        await within_deadline(control.ran)
    finally:
        await other.shutdown()
    assert probe.runs == runs


async def test_start_is_one_shot(scheduler: FleetScheduler[Probe]) -> None:
    """start() twice, or after shutdown, is a programming error."""
    scheduler.start(Probe())
    with pytest.raises(RuntimeError, match="in state running"):
        scheduler.start(Probe())


def test_start_needs_a_running_loop() -> None:
    """start() outside a running event loop raises instead of binding the wrong loop."""
    with pytest.raises(RuntimeError):
        FleetScheduler().start(Probe())


# --- How jobs are added ---------------------------------------------------------------------------


async def test_jobs_are_coalesced_one_instance_with_an_explicit_grace(
    scheduler: FleetScheduler[Probe],
) -> None:
    """Every job: coalesce, max_instances 1, misfire grace one interval (at least 1 s) or
    as given; the function is kept as its import path, the kwargs as plain data."""
    scheduler.add_interval("a", f"{HERE}:count", 30, {"result": "p"})
    scheduler.add_interval("b", f"{HERE}:count", 0.2, {"result": "p"})
    scheduler.add_interval("c", f"{HERE}:count", 30, {"result": "p"}, misfire_grace_time=7)
    a, b, c = (scheduler.job(job_id) for job_id in "abc")
    assert (a.coalesce, a.max_instances, a.misfire_grace_time) == (True, 1, 30)
    assert (a.func_ref, a.seconds, dict(a.kwargs)) == (f"{HERE}:count", 30, {"result": "p"})
    assert (b.misfire_grace_time, c.misfire_grace_time) == (1, 7)
    assert a.next_run_at is None  # not started yet
    scheduler.start(Probe())
    assert scheduler.job("a").next_run_at is not None


async def test_adding_a_job_id_again_replaces_it(scheduler: FleetScheduler[Probe]) -> None:
    """Re-adding an id replaces the job (how a reload changes the interval)."""
    scheduler.add_interval("w", f"{HERE}:count", 30, {"result": "p"})
    scheduler.add_interval("w", f"{HERE}:count", 60, {"result": "q"})
    assert (scheduler.job("w").seconds, dict(scheduler.job("w").kwargs)) == (60, {"result": "q"})
    scheduler.start(Probe())
    scheduler.add_interval("w", f"{HERE}:count", 90, {"result": "r"})
    assert (scheduler.job("w").seconds, dict(scheduler.job("w").kwargs)) == (90, {"result": "r"})
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
        (f"{HERE}:count", {"result": object()}, TypeError, "not plain data"),
        (f"{HERE}:count", {"prob": "p"}, TypeError, "does not take the context and these"),
        (f"{HERE}:fail", {"result": "p"}, TypeError, "does not take the context and these"),
        (f"{HERE}:no_context", {}, TypeError, "does not take the context and these"),
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
            "x", f"{HERE}:count", seconds, {"result": "p"}, misfire_grace_time=grace
        )
