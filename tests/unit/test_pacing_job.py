"""Tests for scheduler.pacing_job (the tick over a registered desk: post each change, re-arm
the reset) and FleetScheduler.add_date, the one-off run that re-arms it. Scheduler runs are
awaited with a deadline under a second, never slept for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.budget_model import Step, Transition
from scheduler.jobs import (
    FleetScheduler,
    MissingContext,
    SchedulerError,
    UnknownJob,
    context,
    register_context,
    unregister_context,
)
from scheduler.pacing_job import (
    PACING_CONTEXT,
    PACING_JOB_REF,
    RESET_DELAY,
    RESET_JOB_ID,
    pacing_tick,
)
from tests.unit.chat_fakes import T0

DEADLINE = 0.9  # seconds: a run due 0.2 s ahead is long done by then
SOON = timedelta(seconds=0.2)
PING = "tests.unit.test_pacing_job:ping"
RESET = T0 + timedelta(hours=5)
DOWN = Transition(
    "group:team",
    ("coder-1", "coder-2"),
    Step.NONE,
    Step.DOWNGRADE,
    "group:team is 82 % over pace: downgrading claude-opus-4-1 → claude-sonnet-4-5",
)
REFUSE = Transition(
    "global", ("ops-1",), Step.QUEUE, Step.REFUSE, "global reached its limit (1,000 tokens)"
)


@dataclass
class FakeDesk:
    """A :class:`~scheduler.pacing_job.PacingDesk` that returns set transitions and records
    what the job did with them; posts for budgets in ``failing`` raise."""

    transitions: list[Transition]
    reset: datetime | None = RESET
    failing: set[str] = field(default_factory=set)
    ticks: int = 0
    posted: list[Transition] = field(default_factory=list)
    resets: list[datetime] = field(default_factory=list)
    ticked: asyncio.Event = field(default_factory=asyncio.Event)

    async def tick(self) -> list[Transition]:
        self.ticks += 1
        self.ticked.set()
        return list(self.transitions)

    def next_reset(self) -> datetime | None:
        return self.reset

    async def post_transition(self, transition: Transition) -> None:
        if transition.budget in self.failing:
            raise RuntimeError("the chat server is down")
        self.posted.append(transition)

    def schedule_reset(self, at: datetime) -> None:
        self.resets.append(at)


@dataclass
class Probe:
    """What :func:`ping` reports to."""

    runs: list[datetime] = field(default_factory=list)
    ran: asyncio.Event = field(default_factory=asyncio.Event)


async def ping(probe: str) -> int:
    """A job referenced by import path (:data:`PING`): counts its runs and when they were."""
    target = context(probe)
    assert isinstance(target, Probe)
    target.runs.append(datetime.now(UTC))
    target.ran.set()
    return len(target.runs)


@pytest.fixture
def desk() -> Iterator[FakeDesk]:
    made = FakeDesk([DOWN, REFUSE])
    register_context(PACING_CONTEXT, made)
    yield made
    unregister_context(PACING_CONTEXT)


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


# --- pacing_tick -----------------------------------------------------------------------------


async def test_the_tick_posts_each_transition_and_re_arms_the_reset(desk: FakeDesk) -> None:
    """One tick posts every change the desk's tick returned, in order, returns them, and
    arms the reset job just after the next window end."""
    assert await pacing_tick() == [DOWN, REFUSE]
    assert (desk.ticks, desk.posted) == (1, [DOWN, REFUSE])
    assert desk.resets == [RESET + RESET_DELAY] == [RESET + timedelta(seconds=1)]


async def test_a_failed_post_is_logged_and_the_rest_still_go_out(
    desk: FakeDesk, caplog: pytest.LogCaptureFixture
) -> None:
    """A post that raises does not stop the other posts nor the re-arming of the reset."""
    desk.failing = {DOWN.budget}
    with caplog.at_level(logging.ERROR, logger="scheduler.pacing_job"):
        assert await pacing_tick() == [DOWN, REFUSE]
    assert desk.posted == [REFUSE]
    assert [r.getMessage() for r in caplog.records] == [
        "could not post a pacing change for group:team"
    ]
    assert desk.resets == [RESET + RESET_DELAY]


async def test_without_a_window_end_nothing_is_armed(desk: FakeDesk) -> None:
    """No budget with an end ahead: no reset job, and nothing changed posts nothing."""
    desk.transitions, desk.reset = [], None
    assert await pacing_tick() == []
    assert (desk.ticks, desk.posted, desk.resets) == (1, [], [])


async def test_the_tick_uses_the_desk_registered_under_its_context() -> None:
    """The job's ``context`` names which registered desk it ticks."""
    other = FakeDesk([REFUSE], reset=None)
    register_context("pacing-2", other)
    try:
        assert await pacing_tick(context="pacing-2") == [REFUSE]
    finally:
        unregister_context("pacing-2")
    assert other.posted == [REFUSE]


async def test_a_context_that_is_not_a_desk_is_an_error() -> None:
    """A wrong object under the name raises SchedulerError; no object at all,
    MissingContext."""
    register_context(PACING_CONTEXT, object())
    try:
        with pytest.raises(SchedulerError, match=r"^context 'pacing' is a object, not a pacing"):
            await pacing_tick()
    finally:
        unregister_context(PACING_CONTEXT)
    with pytest.raises(MissingContext, match="no context 'pacing' is registered"):
        await pacing_tick()


async def test_the_reset_job_runs_the_tick_through_the_scheduler(
    scheduler: FleetScheduler, desk: FakeDesk
) -> None:
    """The app's reset job — PACING_JOB_REF at a date, with the context's name — ticks the
    registered desk when its time comes."""
    scheduler.start()
    scheduler.add_date(
        RESET_JOB_ID, PACING_JOB_REF, datetime.now(UTC) + SOON, {"context": PACING_CONTEXT}
    )
    await asyncio.wait_for(desk.ticked.wait(), DEADLINE)
    assert desk.ticks == 1


# --- FleetScheduler.add_date -------------------------------------------------------------------


async def test_a_date_job_runs_once_at_its_time(scheduler: FleetScheduler, probe: Probe) -> None:
    """A job added for a moment ahead runs at that moment (not before), once: the scheduler
    drops it after its run."""
    scheduler.start()
    at = datetime.now(UTC) + SOON
    scheduler.add_date("once", PING, at, {"probe": "probe"})
    job = scheduler.job("once")
    assert (job.func_ref, job.kwargs, job.next_run_at) == (PING, {"probe": "probe"}, at)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 3600)
    await asyncio.wait_for(probe.ran.wait(), DEADLINE)
    assert len(probe.runs) == 1 and probe.runs[0] >= at
    with pytest.raises(UnknownJob):
        scheduler.job("once")


async def test_a_naive_time_is_refused(scheduler: FleetScheduler) -> None:
    """A one-off run needs an aware time: a naive one raises ValueError and adds no job."""
    with pytest.raises(ValueError, match="needs a timezone-aware time"):
        scheduler.add_date("once", PING, datetime(2025, 3, 1, 12, 0), {"probe": "probe"})
    with pytest.raises(UnknownJob):
        scheduler.job("once")


async def test_adding_the_same_id_moves_the_run(scheduler: FleetScheduler, probe: Probe) -> None:
    """Adding a date job under a taken id replaces it: one job, at the new time — both
    before the scheduler starts and while it runs."""
    now = datetime.now(UTC)
    scheduler.add_date("reset", PING, now + timedelta(hours=1), {"probe": "probe"})
    scheduler.add_date("reset", PING, now + timedelta(hours=2), {"probe": "probe"})
    scheduler.start()
    assert scheduler.job("reset").next_run_at == now + timedelta(hours=2)
    soon = datetime.now(UTC) + SOON
    scheduler.add_date("reset", PING, soon, {"probe": "probe"})
    assert scheduler.job("reset").next_run_at == soon
    await asyncio.wait_for(probe.ran.wait(), DEADLINE)
    assert len(probe.runs) == 1
    with pytest.raises(UnknownJob):  # the hour-later runs were replaced, not kept
        scheduler.job("reset")
