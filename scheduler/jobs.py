"""APScheduler 3.x inside the running event loop, with the rules every job here follows.

:class:`FleetScheduler` is a thin shell over ``AsyncIOScheduler``. A job is an ``async def``
named by import path (``"scheduler.watchdog_job:watchdog_tick"``) whose first argument is
the scheduler's *context* — one object, given to :meth:`FleetScheduler.start`, holding
every live collaborator the jobs act on (the app's is :class:`scheduler.context.JobContext`)
— followed by keyword arguments of plain data (strings, numbers, booleans, null), so a job
can be logged, compared and replaced on a reload. Every job is coalesced (runs that piled
up while the loop was busy become one), runs one instance at a time, and has an explicit
misfire grace time. :meth:`FleetScheduler.add_interval` runs a job every so many seconds,
:meth:`~FleetScheduler.add_cron` at the times a five-field crontab expression names (read
as crontab(5) does, see :mod:`scheduler.cron`), :meth:`~FleetScheduler.add_date` once.
:meth:`FleetScheduler.run_now` runs a job at once, through APScheduler so those rules still
hold, and returns what it returned — for tests and for operators asking on demand.
:meth:`FleetScheduler.shutdown` does not wait for running jobs: APScheduler cancels them,
and the scheduler cancels its own waiters.

Jobs live in memory only: what must survive a restart (operator schedules) is kept in the
ledger and registered again at start.

Errors are in :mod:`scheduler.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import importlib
import inspect
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Generic, TypeAlias, TypeVar

from apscheduler.events import (  # type: ignore[import-untyped]
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
)
from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.schedulers.base import STATE_STOPPED  # type: ignore[import-untyped]
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from scheduler.cron import cron_trigger
from scheduler.errors import JobAlreadyRunning, JobMissed, SchedulerError, UnknownJob

JobArg: TypeAlias = str | int | float | bool | None
"""What a job's keyword arguments may be: plain data, never a live object."""

C = TypeVar("C")
"""The context every job of one scheduler receives first."""

_WATCHED_EVENTS = EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES


class SchedulerState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A scheduled job as APScheduler holds it."""

    job_id: str
    func_ref: str
    seconds: float | None  # the interval; None for a cron job
    kwargs: Mapping[str, JobArg]
    coalesce: bool
    max_instances: int
    misfire_grace_time: int | None
    next_run_at: datetime | None  # None before the scheduler starts
    trigger: str = ""  # APScheduler's description, e.g. "cron[month='*', ..., minute='0']"


class FleetScheduler(Generic[C]):
    """APScheduler's ``AsyncIOScheduler`` on the running loop, with our job rules.

    Jobs may be added before :meth:`start`; they are scheduled when it runs, and each run
    receives the context given to :meth:`start`.
    """

    def __init__(self) -> None:
        self._scheduler: Any = AsyncIOScheduler(timezone=UTC)
        self._state = SchedulerState.NEW
        self._context: C | None = None
        self._jobs: dict[str, Callable[..., Awaitable[object]]] = {}  # func_ref -> function
        # run_now callers, by (job id, the run time we asked for): resolved from the
        # scheduler's events for exactly that run.
        self._waiters: dict[tuple[str, datetime], asyncio.Future[object]] = {}

    @property
    def state(self) -> SchedulerState:
        return self._state

    def start(self, context: C) -> None:
        """Start scheduling, on the running event loop (call it from a coroutine); every
        run from now on receives ``context`` as its first argument."""
        asyncio.get_running_loop()  # RuntimeError outside a loop, before any state changes
        if self._state is not SchedulerState.NEW:
            raise RuntimeError(f"FleetScheduler.start() called in state {self._state.value}")
        self._context = context
        self._scheduler.add_listener(self._on_event, _WATCHED_EVENTS)
        self._scheduler.start()
        self._state = SchedulerState.RUNNING

    async def shutdown(self) -> None:
        """Stop scheduling without waiting for running jobs (APScheduler cancels them) and
        cancel every ``run_now`` still waiting. Calling it again does nothing."""
        was_running = self._state is SchedulerState.RUNNING
        self._state = SchedulerState.STOPPED
        if was_running:
            self._scheduler.shutdown(wait=False)
        for waiter in self._waiters.values():
            waiter.cancel()
        self._waiters.clear()
        # AsyncIOScheduler shuts down on a later turn of the loop (call_soon); give it
        # those turns, so that once this returns no job starts again.
        for _ in range(10):
            if not was_running or self._scheduler.state == STATE_STOPPED:
                break
            await asyncio.sleep(0)

    def add_interval(
        self,
        job_id: str,
        func_ref: str,
        seconds: float,
        kwargs: Mapping[str, JobArg] | None = None,
        *,
        misfire_grace_time: int | None = None,
        first_run_at: datetime | None = None,
    ) -> None:
        """Run the ``async def`` at ``func_ref`` (``"module:function"``) every ``seconds``
        with ``kwargs``. A run that cannot start within ``misfire_grace_time`` seconds of
        its time is skipped (default: one interval, at least 1 s). The first run is one
        interval from now, or at ``first_run_at`` (aware) when given. Adding an id again
        replaces the job: that is how a reload changes an interval."""
        if not seconds > 0:
            raise ValueError(f"interval must be > 0 seconds, got {seconds!r}")
        if first_run_at is not None and first_run_at.tzinfo is None:
            raise ValueError(f"first_run_at must be timezone-aware, got {first_run_at!r}")
        grace = max(1, math.ceil(seconds)) if misfire_grace_time is None else misfire_grace_time
        trigger = IntervalTrigger(seconds=seconds, timezone=UTC)
        first = {} if first_run_at is None else {"next_run_time": first_run_at}
        self._add(job_id, func_ref, trigger, kwargs, grace, **first)

    def add_cron(
        self,
        job_id: str,
        func_ref: str,
        crontab: str,
        kwargs: Mapping[str, JobArg] | None = None,
        *,
        timezone: tzinfo,
        misfire_grace_time: int,
        first_run_at: datetime | None = None,
    ) -> None:
        """Run the ``async def`` at ``func_ref`` with ``kwargs`` at the times the five-field
        ``crontab`` names, read in ``timezone``. A run that cannot start within
        ``misfire_grace_time`` seconds of its time is skipped. ``first_run_at`` (aware) makes
        the first run that time instead of the next the expression names — a run missed
        while Fleetwarden was down, to be made up if still within the grace time. Raises
        :class:`~scheduler.cron.CronError` for a bad expression. Adding an id again
        replaces the job."""
        trigger = cron_trigger(crontab, timezone)
        if first_run_at is not None and first_run_at.tzinfo is None:
            raise ValueError(f"first_run_at must be timezone-aware, got {first_run_at!r}")
        # Only pass next_run_time when given: APScheduler reads its absence as "from the
        # trigger", and an explicit None as "paused".
        first = {} if first_run_at is None else {"next_run_time": first_run_at}
        self._add(job_id, func_ref, trigger, kwargs, misfire_grace_time, **first)

    def add_date(
        self,
        job_id: str,
        func_ref: str,
        at: datetime,
        kwargs: Mapping[str, JobArg] | None = None,
        *,
        misfire_grace_time: int = 3600,
    ) -> None:
        """Run the ``async def`` at ``func_ref`` once, at ``at`` (aware). Adding an id again
        moves the run: that is how the pacing tick keeps one run armed for the next window
        reset."""
        if at.tzinfo is None:
            raise ValueError(f"a one-off run needs a timezone-aware time, got {at!r}")
        trigger = DateTrigger(run_date=at, timezone=UTC)
        self._add(job_id, func_ref, trigger, kwargs, misfire_grace_time)

    def _add(
        self,
        job_id: str,
        func_ref: str,
        trigger: Any,
        kwargs: Mapping[str, JobArg] | None,
        grace: int,
        **extra: Any,
    ) -> None:
        """Add (or replace) a job with the rules every job here follows: coalesced, one
        instance at a time, an explicit misfire grace time."""
        arguments = dict(kwargs or {})
        self._jobs[func_ref] = _check_job(func_ref, arguments)
        if grace < 1:
            raise ValueError(f"misfire_grace_time must be at least 1 second, got {grace!r}")
        if self._state is SchedulerState.NEW:
            # Before start APScheduler queues jobs and replace_existing only applies when
            # the queue is flushed; get_job() would still see the first one meanwhile.
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job_id)
        self._scheduler.add_job(
            self._invoke,
            args=(func_ref,),
            trigger=trigger,
            id=job_id,
            name=job_id,
            kwargs=arguments,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=grace,
            replace_existing=True,
            **extra,
        )

    def remove(self, job_id: str) -> None:
        """Unschedule a job; raises :class:`UnknownJob`."""
        try:
            self._scheduler.remove_job(job_id)
        except JobLookupError:
            raise UnknownJob(f"no job {job_id!r}") from None

    def jobs(self) -> list[JobInfo]:
        """Every scheduled job, by id."""
        return sorted(
            (self.job(job.id) for job in self._scheduler.get_jobs()), key=lambda j: j.job_id
        )

    def job(self, job_id: str) -> JobInfo:
        """How ``job_id`` is scheduled; raises :class:`UnknownJob`."""
        job = self._scheduler.get_job(job_id)
        if job is None:
            raise UnknownJob(f"no job {job_id!r}")
        return JobInfo(
            job_id=job.id,
            func_ref=job.args[0],
            seconds=(
                job.trigger.interval.total_seconds()
                if isinstance(job.trigger, IntervalTrigger)
                else None
            ),
            kwargs=dict(job.kwargs),
            coalesce=job.coalesce,
            max_instances=job.max_instances,
            misfire_grace_time=job.misfire_grace_time,
            next_run_at=getattr(job, "next_run_time", None),
            trigger=str(job.trigger),
        )

    async def run_now(self, job_id: str) -> object:
        """Run ``job_id`` now and return its result (or raise its exception). The interval
        counts again from now. Raises :class:`UnknownJob`, :class:`JobAlreadyRunning` if
        it is running, :class:`SchedulerError` unless the scheduler runs."""
        if self._state is not SchedulerState.RUNNING:
            raise SchedulerError(f"the scheduler is {self._state.value}, not running")
        # APScheduler decides what is due by the system clock, so this time must be
        # from the same clock (an injected one could be hours away).
        when = datetime.now(UTC)
        key = (job_id, when)
        waiter = self._waiters.get(key)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[key] = waiter
        try:
            self._scheduler.modify_job(job_id, next_run_time=when)
        except JobLookupError:
            self._waiters.pop(key, None)
            raise UnknownJob(f"no job {job_id!r}") from None
        try:
            return await waiter
        finally:
            self._waiters.pop(key, None)

    async def _invoke(self, func_ref: str, **kwargs: JobArg) -> object:
        """One run of the job at ``func_ref``, handed the context."""
        return await self._jobs[func_ref](self._context, **kwargs)

    def _on_event(self, event: Any) -> None:
        runs = getattr(event, "scheduled_run_times", None) or [event.scheduled_run_time]
        for run_time in runs:
            waiter = self._waiters.get((event.job_id, run_time))
            if waiter is None or waiter.done():
                continue
            if event.code == EVENT_JOB_EXECUTED:
                waiter.set_result(event.retval)
            elif event.code == EVENT_JOB_MAX_INSTANCES:
                waiter.set_exception(JobAlreadyRunning(f"job {event.job_id!r} is running"))
            elif event.code == EVENT_JOB_MISSED:
                waiter.set_exception(JobMissed(f"job {event.job_id!r} started too late"))
            elif isinstance(event.exception, asyncio.CancelledError):
                waiter.cancel()
            else:
                waiter.set_exception(event.exception)


def _check_job(func_ref: str, kwargs: Mapping[str, object]) -> Callable[..., Awaitable[object]]:
    """Fail now, not at the first run: the reference must name an ``async def`` that takes
    the context and then ``kwargs``, and ``kwargs`` must be plain data. Returns the
    function."""
    module_name, _, attribute = func_ref.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"job reference {func_ref!r} is not of the form 'module:function'")
    try:
        func: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            func = getattr(func, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"job reference {func_ref!r} does not resolve: {exc}") from None
    if not inspect.iscoroutinefunction(func):
        raise ValueError(f"job {func_ref!r} must be an async def function")
    for name, value in kwargs.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise TypeError(
                f"job argument {name}={type(value).__name__} is not plain data; live objects "
                "belong in the scheduler's context"
            )
    try:
        inspect.signature(func).bind(None, **kwargs)
    except TypeError as exc:
        raise TypeError(
            f"job {func_ref!r} does not take the context and these arguments: {exc}"
        ) from None
    return func  # type: ignore[no-any-return]
