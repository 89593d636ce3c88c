"""Tests for scheduler.pacing_job (the tick over the context's budgets: post each change
through the notice board, re-arm the reset) and FleetScheduler.add_date, the one-off run
that re-arms it. Scheduler runs are awaited with a deadline under a second, never slept
for."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from fleet.budgets.model import Transition
from fleet.ledger.records.budgets import Step
from scheduler.context import JobContext
from scheduler.errors import UnknownJob
from scheduler.jobs import FleetScheduler, JobArg
from scheduler.pacing_job import PACING_JOB_REF, RESET_DELAY, RESET_JOB_ID, pacing_tick
from tests.fakes.doubles.job_context import RecordingBoard, job_context
from tests.unit.chat_fakes import T0

DEADLINE = 0.9  # seconds: a run due 0.2 s ahead is long done by then
SOON = timedelta(seconds=0.2)
PING = "tests.unit.scheduler.test_pacing_job:ping"
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
class FakeBook:
    """The budgets as the tick drives them: set transitions, a set next reset."""

    transitions: list[Transition]
    reset: datetime | None = RESET
    ticks: int = 0
    ticked: asyncio.Event = field(default_factory=asyncio.Event)

    async def tick(self) -> list[Transition]:
        self.ticks += 1
        self.ticked.set()
        return list(self.transitions)

    def next_reset(self) -> datetime | None:
        return self.reset


@dataclass
class ArmingScheduler:
    """Records the one-off runs a job arms."""

    armed: list[tuple[str, str, datetime]] = field(default_factory=list)

    def add_date(
        self, job_id: str, func_ref: str, at: datetime, kwargs: dict[str, JobArg] | None = None
    ) -> None:
        self.armed.append((job_id, func_ref, at))


@dataclass
class Probe:
    """What :func:`ping` reports to."""

    runs: list[datetime] = field(default_factory=list)
    ran: asyncio.Event = field(default_factory=asyncio.Event)


async def ping(target: Probe) -> int:
    """A job referenced by import path (:data:`PING`): counts its runs and when they were."""
    target.runs.append(datetime.now(UTC))
    target.ran.set()
    return len(target.runs)


@pytest.fixture
def pacing_job_book() -> FakeBook:
    return FakeBook([DOWN, REFUSE])


@pytest.fixture
def probe() -> Probe:
    return Probe()


# --- pacing_tick -----------------------------------------------------------------------------


async def test_the_tick_posts_each_transition_and_re_arms_the_reset(
    pacing_job_book: FakeBook,
) -> None:
    """One tick posts every change the book's tick returned, in order, as notices for the
    room and the governed agents' threads, returns them, and arms the reset job just after
    the next window end."""
    board, arming = RecordingBoard(), ArmingScheduler()
    assert await pacing_tick(
        job_context(budgets=pacing_job_book, notices=board, scheduler=arming)
    ) == [
        DOWN,
        REFUSE,
    ]
    assert pacing_job_book.ticks == 1
    assert board.posted == [DOWN.notice(), REFUSE.notice()]
    assert [(n.agents, n.tone, n.home_too) for n in board.posted] == [
        (("coder-1", "coder-2"), "warning", True),
        (("ops-1",), "error", True),
    ]
    assert arming.armed == [(RESET_JOB_ID, PACING_JOB_REF, RESET + RESET_DELAY)]
    assert timedelta(seconds=1) == RESET_DELAY


async def test_a_failed_post_does_not_stop_the_rest(pacing_job_book: FakeBook) -> None:
    """A change a connector could not take does not stop the other posts nor the re-arming
    of the reset (the board reports the failure; it never raises)."""
    board, arming = RecordingBoard(failing=("matrix",)), ArmingScheduler()
    assert await pacing_tick(
        job_context(budgets=pacing_job_book, notices=board, scheduler=arming)
    ) == [
        DOWN,
        REFUSE,
    ]
    assert board.posted == [DOWN.notice(), REFUSE.notice()]
    assert len(arming.armed) == 1


async def test_without_a_window_end_nothing_is_armed(pacing_job_book: FakeBook) -> None:
    """No budget with an end ahead: no reset job, and nothing changed posts nothing."""
    pacing_job_book.transitions, pacing_job_book.reset = [], None
    board, arming = RecordingBoard(), ArmingScheduler()
    assert (
        await pacing_tick(job_context(budgets=pacing_job_book, notices=board, scheduler=arming))
        == []
    )
    assert (pacing_job_book.ticks, board.posted, arming.armed) == (1, [], [])


async def test_the_reset_job_runs_the_tick_through_the_scheduler(pacing_job_book: FakeBook) -> None:
    """The app's reset job — PACING_JOB_REF at a date — ticks the context's budgets when its
    time comes, and arms the next reset on the same scheduler."""
    scheduler: FleetScheduler[JobContext] = FleetScheduler()
    try:
        scheduler.start(
            job_context(scheduler=scheduler, budgets=pacing_job_book, notices=RecordingBoard())
        )
        scheduler.add_date(RESET_JOB_ID, PACING_JOB_REF, datetime.now(UTC) + SOON)
        await asyncio.wait_for(pacing_job_book.ticked.wait(), DEADLINE)
        assert pacing_job_book.ticks == 1
    finally:
        await scheduler.shutdown()


# --- FleetScheduler.add_date -------------------------------------------------------------------


async def test_a_date_job_runs_once_at_its_time(
    scheduler: FleetScheduler[Probe], probe: Probe
) -> None:
    """A job added for a moment ahead runs at that moment (not before), once: the scheduler
    drops it after its run."""
    scheduler.start(probe)
    at = datetime.now(UTC) + SOON
    scheduler.add_date("once", PING, at)
    job = scheduler.job("once")
    assert (job.func_ref, job.kwargs, job.next_run_at) == (PING, {}, at)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 3600)
    await asyncio.wait_for(probe.ran.wait(), DEADLINE)
    assert len(probe.runs) == 1 and probe.runs[0] >= at
    with pytest.raises(UnknownJob):
        scheduler.job("once")


async def test_a_naive_time_is_refused(scheduler: FleetScheduler[Probe]) -> None:
    """A one-off run needs an aware time: a naive one raises ValueError and adds no job."""
    with pytest.raises(ValueError, match="needs a timezone-aware time"):
        scheduler.add_date("once", PING, datetime(2025, 3, 1, 12, 0))
    with pytest.raises(UnknownJob):
        scheduler.job("once")


async def test_adding_the_same_id_moves_the_run(
    scheduler: FleetScheduler[Probe], probe: Probe
) -> None:
    """Adding a date job under a taken id replaces it: one job, at the new time — both
    before the scheduler starts and while it runs."""
    now = datetime.now(UTC)
    scheduler.add_date("reset", PING, now + timedelta(hours=1))
    scheduler.add_date("reset", PING, now + timedelta(hours=2))
    scheduler.start(probe)
    assert scheduler.job("reset").next_run_at == now + timedelta(hours=2)
    soon = datetime.now(UTC) + SOON
    scheduler.add_date("reset", PING, soon)
    assert scheduler.job("reset").next_run_at == soon
    await asyncio.wait_for(probe.ran.wait(), DEADLINE)
    assert len(probe.runs) == 1
    with pytest.raises(UnknownJob):  # the hour-later runs were replaced, not kept
        scheduler.job("reset")
