"""Tests for the forge's rounds (fleet.forge.runs.rounds, polling, and the Apps' git
tokens): a round that fails is logged and the next one runs; a polled forge's events are
taken once and acted on; a rate-limited forge is left alone until its limit lifts, a held
one is not asked; stop ends the round under way and none starts after; a token that could
not be renewed keeps the one it had."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from fleet.forge.api.git_tokens import RENEW_SECONDS, GitTokens
from fleet.forge.api.rest import ForgeRateLimited
from fleet.forge.model import ForgeApiError
from fleet.forge.runs.polling import ForgePolling
from fleet.forge.runs.rounds import Rounds
from fleet.forge.runs.watch import INTERVAL
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunRecord
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.forge_double import FakeForgeApi
from tests.unit.fleet.forge.runs.work_rig import FORGE, LABEL, SLUG, WorkRig, forge_entry


@pytest.fixture
def rounds_rig(ledger: Ledger, clock: ManualClock) -> WorkRig:
    return WorkRig.make(ledger, clock, entry=forge_entry(poll_seconds=30))


def polling(rig: WorkRig) -> ForgePolling:
    return ForgePolling.of(FORGE, rig.entry, rig.api, [SLUG], work=rig.work, clock=rig.clock)


def labelled(rig: WorkRig) -> None:
    """Issue #3 carries the trigger label, given by alice a minute ago."""
    at = rig.clock.now() - timedelta(minutes=1)
    rig.api.add_issue(labels=(LABEL,), updated_at=at)
    rig.api.change(3, "labeled", LABEL, "alice", at)


async def test_the_rounds_say_what_they_run_and_how_often(rounds_rig: WorkRig) -> None:
    """The watch every INTERVAL, each polled forge every poll_seconds, the tokens every
    RENEW_SECONDS only when a repository uses one."""
    tokens = GitTokens({FORGE: rounds_rig.api}, [(FORGE, "APP_TOKEN", SLUG)])
    rounds = Rounds(watch=rounds_rig.watch, polls=[polling(rounds_rig)], tokens=tokens)
    assert rounds.watch_seconds == INTERVAL
    assert rounds.poll_seconds == {FORGE: 30.0}
    assert rounds.renew_seconds == RENEW_SECONDS
    bare = Rounds(tokens=GitTokens({}, []))
    assert (bare.watch_seconds, bare.poll_seconds, bare.renew_seconds) == (None, {}, None)


async def test_a_failed_watch_round_is_logged_and_the_next_one_runs(
    rounds_rig: WorkRig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The ledger failing once: the round says so in the log and returns; the next round
    reads the runs again."""
    reads: list[int] = []
    real = rounds_rig.ledger.forge.forge_runs

    async def flaky() -> list[ForgeRunRecord]:
        reads.append(1)
        if len(reads) == 1:
            raise RuntimeError("the ledger is away")
        return await real()

    monkeypatch.setattr(rounds_rig.ledger.forge, "forge_runs", flaky)
    rounds = Rounds(watch=rounds_rig.watch)
    await rounds.watch()
    assert "the forge runs' round failed" in caplog.text
    assert "the ledger is away" in caplog.text
    await rounds.watch()
    assert len(reads) == 2


async def test_a_polled_label_starts_one_run_however_often_it_is_read(rounds_rig: WorkRig) -> None:
    """The label found by two rounds: one delivery taken, one run."""
    labelled(rounds_rig)
    rounds = Rounds(polls=[polling(rounds_rig)])
    await rounds.poll(FORGE)
    await rounds_rig.work.settle()
    first = await rounds_rig.run()
    await rounds.poll(FORGE)
    await rounds_rig.work.settle()
    assert (await rounds_rig.run()).id == first.id
    assert len(rounds_rig.launcher.starts) == 1
    await rounds.poll("no-such-forge")  # not polled: nothing asked
    assert len(rounds_rig.api.named("open_issues")) == 2


async def test_a_rate_limited_forge_is_not_asked_until_its_limit_lifts(rounds_rig: WorkRig) -> None:
    """The forge rate limited (two minutes): its rounds ask nothing; past the limit, it
    is asked again."""
    lifts = rounds_rig.clock.now() + timedelta(minutes=2)
    rounds_rig.work.holds.back_off(FORGE, ForgeRateLimited("rate limited", 403, lifts))
    rounds = Rounds(polls=[polling(rounds_rig)])
    await rounds.poll(FORGE)
    assert rounds_rig.api.named("open_issues") == []
    rounds_rig.clock.advance(3 * 60)
    await rounds.poll(FORGE)
    await rounds_rig.work.settle()
    assert len(rounds_rig.api.named("open_issues")) == 1


async def test_a_held_forge_is_not_asked(rounds_rig: WorkRig) -> None:
    """Its login found wrong at start: its round asks nothing."""
    rounds_rig.work.holds.held[FORGE] = "the login is not the credential's"
    await Rounds(polls=[polling(rounds_rig)]).poll(FORGE)
    assert rounds_rig.api.named("open_issues") == []


async def test_stop_ends_the_round_under_way_and_none_starts_after(
    rounds_rig: WorkRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round waiting on the ledger is ended by stop (its caller returns quietly); a
    round asked for after stop does nothing."""
    started, ended = asyncio.Event(), asyncio.Event()
    reads: list[int] = []

    async def slow() -> list[ForgeRunRecord]:
        reads.append(1)
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()
        return []

    monkeypatch.setattr(rounds_rig.ledger.forge, "forge_runs", slow)
    rounds = Rounds(watch=rounds_rig.watch)
    under_way = asyncio.create_task(rounds.watch())
    await asyncio.wait_for(started.wait(), 5)
    await rounds.stop()
    assert ended.is_set()
    await asyncio.wait_for(under_way, 5)  # returned, not cancelled
    await rounds.watch()
    assert len(reads) == 1


async def test_a_cancelled_caller_cancels_its_round(
    rounds_rig: WorkRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler cancelling a job (its shutdown): the round ends with it."""
    started, ended = asyncio.Event(), asyncio.Event()

    async def slow() -> list[ForgeRunRecord]:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()
        return []

    monkeypatch.setattr(rounds_rig.ledger.forge, "forge_runs", slow)
    job = asyncio.create_task(Rounds(watch=rounds_rig.watch).watch())
    await asyncio.wait_for(started.wait(), 5)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert ended.is_set()


async def test_a_token_not_renewed_keeps_the_one_it_had(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each repository's token minted; the forge refusing later: the token stays, the
    refusal is in the log; the next round mints again."""
    api = FakeForgeApi()
    tokens = GitTokens({FORGE: api}, [(FORGE, "APP_TOKEN", SLUG)])
    rounds = Rounds(tokens=tokens)
    await rounds.renew_tokens()
    assert tokens.tokens == {"APP_TOKEN": "ghs_installation_token_of_the_fake"}
    api.failures["git_token"] = ForgeApiError("GitHub refused POST: 500", 500)
    await rounds.renew_tokens()
    assert tokens.tokens == {"APP_TOKEN": "ghs_installation_token_of_the_fake"}
    assert "no installation token for acme/app on" in caplog.text
    assert len(api.named("git_token")) == 2
