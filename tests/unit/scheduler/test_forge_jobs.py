"""Tests for the forges' jobs (scheduler.forge_jobs, registered by
bot.app.phases.serving.jobs): each job runs its round of the context's forges, and none
without forges; the watch and every polled forge run at once and then on their interval, the
Apps' tokens one interval on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.app.phases.serving.jobs import add_forge_jobs
from fleet.forge.api.git_tokens import RENEW_SECONDS, GitTokens
from fleet.forge.runs.polling import ForgePolling
from fleet.forge.runs.rounds import Rounds
from fleet.forge.runs.watch import INTERVAL
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from scheduler.context import JobContext
from scheduler.forge_jobs import (
    FORGE_TOKENS_JOB_ID,
    FORGE_WATCH_JOB_ID,
    forge_poll,
    forge_poll_job_id,
    forge_watch,
    renew_forge_tokens,
)
from scheduler.jobs import FleetScheduler
from tests.fakes.doubles.job_context import job_context
from tests.unit.fleet.forge.runs.work_rig import FORGE, SLUG, WorkRig, forge_entry

DEADLINE = 5.0


@dataclass
class RecordingRounds:
    """The forges' rounds, counted; ``ran`` set once each kind of round ran."""

    done: list[str] = field(default_factory=list)
    ran: asyncio.Event = field(default_factory=asyncio.Event)
    wanted: frozenset[str] = frozenset({"watch", f"poll {FORGE}"})

    def _did(self, what: str) -> None:
        self.done.append(what)
        if self.wanted <= set(self.done):
            self.ran.set()

    async def watch(self) -> None:
        self._did("watch")

    async def poll(self, forge: str) -> None:
        self._did(f"poll {forge}")

    async def renew_tokens(self) -> None:
        self._did("tokens")


async def test_each_job_runs_its_round_and_none_without_forges() -> None:
    rounds = RecordingRounds()
    ctx = job_context(forges=rounds)
    await forge_watch(ctx)
    await forge_poll(ctx, forge=FORGE)
    await renew_forge_tokens(ctx)
    assert rounds.done == ["watch", f"poll {FORGE}", "tokens"]
    bare = job_context(forges=None)
    await forge_watch(bare)
    await forge_poll(bare, forge="gh")
    await renew_forge_tokens(bare)


async def test_the_watch_and_the_polls_run_at_once_the_tokens_an_interval_on(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Registered from the forges' rounds: each at its interval; the watch and the poll
    run as soon as the scheduler runs, the tokens' renewal waits its interval."""
    rig = WorkRig.make(ledger, clock, entry=forge_entry(poll_seconds=30))
    polling = ForgePolling.of(FORGE, rig.entry, rig.api, [SLUG], work=rig.work, clock=clock)
    tokens = GitTokens({FORGE: rig.api}, [(FORGE, "APP_TOKEN", SLUG)])
    made = Rounds(watch=rig.watch, polls=[polling], tokens=tokens)
    scheduler: FleetScheduler[JobContext] = FleetScheduler()
    recording = RecordingRounds()
    try:
        add_forge_jobs(scheduler, made)
        jobs = {job.job_id: job for job in scheduler.jobs()}
        assert set(jobs) == {FORGE_WATCH_JOB_ID, forge_poll_job_id(FORGE), FORGE_TOKENS_JOB_ID}
        assert jobs[FORGE_WATCH_JOB_ID].seconds == INTERVAL
        assert jobs[forge_poll_job_id(FORGE)].seconds == 30.0
        assert jobs[forge_poll_job_id(FORGE)].kwargs == {"forge": FORGE}
        assert jobs[FORGE_TOKENS_JOB_ID].seconds == RENEW_SECONDS
        scheduler.start(job_context(scheduler=scheduler, forges=recording))
        await asyncio.wait_for(recording.ran.wait(), DEADLINE)
        assert "tokens" not in recording.done
        renew_at = scheduler.job(FORGE_TOKENS_JOB_ID).next_run_at
        assert renew_at is not None
        assert renew_at > datetime.now(UTC) + timedelta(seconds=RENEW_SECONDS - 30)
    finally:
        await scheduler.shutdown()


async def test_no_forge_rounds_no_forge_jobs() -> None:
    """No watch, no polled forge, no App repository: nothing is registered."""
    scheduler: FleetScheduler[JobContext] = FleetScheduler()
    add_forge_jobs(scheduler, Rounds(tokens=GitTokens({}, [])))
    assert scheduler.jobs() == []
    await scheduler.shutdown()
