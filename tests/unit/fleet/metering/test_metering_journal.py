"""Tests for fleet.metering.counting.journal: usage the ledger did not take at shutdown, kept in a
private file and written to the ledger at the next start, once."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import stat
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.metering.counting.events import Outcome, QuotaSignal, Tokens, UsageEvent
from fleet.metering.counting.journal import DIRECTORY, UsageJournal
from fleet.metering.counting.recorder import Recorder
from fleet.timing.clock import ManualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def usage(n: int) -> UsageEvent:
    return UsageEvent(
        at=T0 + timedelta(seconds=n),
        agent=f"agent-{n}",
        provider="anthropic",
        api="anthropic",
        requested_model="claude-sonnet-4-5",
        served_model="claude-sonnet-4-5-20250929",
        tokens=Tokens(input=100 * n, output=40, cache_read=2000, cache_write=300, reasoning=10),
        stream=True,
        status=200,
        outcome=Outcome.PARTIAL,
        latency_ms=812.5,
        ttfb_ms=None,
        request_id=f"req_{n}",
        partial=True,
        reason="the agent hung up: café ☕",
        cost_usd=0.0125,
        priced=True,
        rewritten_from="claude-opus-4-1",
        account="team-a",
    )


def signal(n: int) -> QuotaSignal:
    return QuotaSignal(
        T0, "agent-1", "anthropic", "anthropic-ratelimit", "x-remaining", str(n), "5h", "tokens"
    )


class Failing:
    """A ledger sink that is down."""

    calls = 0

    async def __call__(self, events: Sequence[UsageEvent], signals: Sequence[QuotaSignal]) -> None:
        self.calls += 1
        raise RuntimeError("database is locked")


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder's retry waits at shutdown pass at once."""
    real_sleep = asyncio.sleep

    async def no_wait(delay: float, result: object = None) -> object:
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", no_wait)


@pytest.fixture
async def metering_journal_ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_path / "ledger.db", ManualClock(T0))
    try:
        yield opened
    finally:
        await opened.close()


def journal_of(state: Path, ledger: Ledger) -> UsageJournal:
    return UsageJournal(state / DIRECTORY, ledger.metering.record_metering_once, ManualClock(T0))


async def shut_down_failing(state: Path, journal: UsageJournal, rows: int = 3) -> Path:
    """A recorder whose ledger is down at shutdown, holding ``rows`` usage rows and two
    signals; the journal file it left."""
    recorder = Recorder(Failing(), keep=journal.keep)
    for n in range(1, rows + 1):
        recorder.add(usage(n), [signal(n)] if n <= 2 else [])
    await recorder.stop()
    [path] = journal_files(state)
    return path


def journal_files(state: Path) -> list[Path]:
    directory = state / DIRECTORY
    return sorted(directory.glob("usage-*.jsonl")) if directory.is_dir() else []


async def test_the_journal_is_private_and_holds_only_what_the_ledger_would(
    tmp_path: Path, metering_journal_ledger: Ledger
) -> None:
    """The file is 0600 in a 0700 directory under the state dir, one line a row, each with
    exactly the fields of a ledger row."""
    path = await shut_down_failing(tmp_path, journal_of(tmp_path, metering_journal_ledger))
    assert path.parent == tmp_path / DIRECTORY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["usage"] * 3 + ["signal"] * 2
    fields = {"kind", "tokens", *UsageEvent.__dataclass_fields__}
    assert set(lines[0]) == fields
    assert set(lines[3]) == {"kind", *QuotaSignal.__dataclass_fields__}


async def test_the_next_start_writes_the_kept_rows_once(
    tmp_path: Path, metering_journal_ledger: Ledger
) -> None:
    """Replayed, the rows are in the ledger as they were metered and the file is gone; a
    second start writes nothing more."""
    journal = journal_of(tmp_path, metering_journal_ledger)
    await shut_down_failing(tmp_path, journal)
    assert await metering_journal_ledger.metering.usage_events() == []
    assert await journal.replay() == 3
    assert await metering_journal_ledger.metering.usage_events() == [usage(1), usage(2), usage(3)]
    assert (
        len(await metering_journal_ledger.metering.quota_signals(since=T0 - timedelta(days=1))) == 2
    )
    assert journal_files(tmp_path) == []
    assert await journal_of(tmp_path, metering_journal_ledger).replay() == 0
    assert len(await metering_journal_ledger.metering.usage_events()) == 3


async def test_a_crash_before_the_file_is_removed_does_not_count_twice(
    tmp_path: Path, metering_journal_ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """The file found again after its rows went in (a crash between the commit and the
    removal) writes nothing, and is removed."""
    journal = journal_of(tmp_path, metering_journal_ledger)
    path = await shut_down_failing(tmp_path, journal)
    copy = tmp_path / "copy"
    shutil.copy(path, copy)
    assert await journal.replay() == 3
    shutil.copy(copy, path)  # as if the removal never happened
    assert await journal.replay() == 0
    assert len(await metering_journal_ledger.metering.usage_events()) == 3
    assert (
        len(await metering_journal_ledger.metering.quota_signals(since=T0 - timedelta(days=1))) == 2
    )
    assert journal_files(tmp_path) == []
    assert "already in the ledger" in caplog.text


async def test_two_shutdowns_keep_two_files_and_both_are_written(
    tmp_path: Path, metering_journal_ledger: Ledger
) -> None:
    """A second failed shutdown before a start adds a file; it never overwrites one."""
    journal = journal_of(tmp_path, metering_journal_ledger)
    await shut_down_failing(tmp_path, journal, rows=1)
    recorder = Recorder(Failing(), keep=journal.keep)
    recorder.add(usage(7))
    await recorder.stop()
    assert len(journal_files(tmp_path)) == 2
    assert await journal.replay() == 2
    assert sorted(
        event.agent for event in await metering_journal_ledger.metering.usage_events()
    ) == [
        "agent-1",
        "agent-7",
    ]


async def test_a_corrupt_line_is_kept_aside_and_loses_nothing_else(
    tmp_path: Path, metering_journal_ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """A line that is not JSON and one whose row is malformed are logged and kept aside in a
    private ``.rejected`` file; every other row goes in."""
    journal = journal_of(tmp_path, metering_journal_ledger)
    path = await shut_down_failing(tmp_path, journal)
    lines = path.read_text().splitlines()
    bad_row = json.loads(lines[1])
    bad_row["tokens"]["output"] = "forty"
    bad = ['{"kind": "usage", "at": "2026-03-01T1', json.dumps(bad_row)]
    path.write_text("\n".join([lines[0], bad[0], bad[1], *lines[2:]]) + "\n")
    with caplog.at_level(logging.ERROR):
        assert await journal.replay() == 2
    assert [event.agent for event in await metering_journal_ledger.metering.usage_events()] == [
        "agent-1",
        "agent-3",
    ]
    assert (
        len(await metering_journal_ledger.metering.quota_signals(since=T0 - timedelta(days=1))) == 2
    )
    aside = path.with_suffix(".rejected")
    assert aside.read_text().splitlines() == bad
    assert stat.S_IMODE(aside.stat().st_mode) == 0o600
    assert "2 lines of the metering journal" in caplog.text and "line 2" in caplog.text


async def test_a_ledger_that_refuses_the_replay_keeps_the_file_for_the_next_start(
    tmp_path: Path, metering_journal_ledger: Ledger
) -> None:
    """A replay the ledger fails leaves the file; the next start writes it."""
    journal = journal_of(tmp_path, metering_journal_ledger)
    await shut_down_failing(tmp_path, journal)

    async def down(key: str, events: Sequence[UsageEvent], signals: Sequence[QuotaSignal]) -> bool:
        raise RuntimeError("disk I/O error")

    assert await UsageJournal(tmp_path / DIRECTORY, down, ManualClock(T0)).replay() == 0
    assert len(journal_files(tmp_path)) == 1
    assert await journal.replay() == 3


async def test_no_journal_directory_is_nothing_to_replay(
    tmp_path: Path, metering_journal_ledger: Ledger
) -> None:
    """A first start, or one after clean shutdowns, finds nothing and creates nothing."""
    assert await journal_of(tmp_path, metering_journal_ledger).replay() == 0
    assert not (tmp_path / DIRECTORY).exists()
