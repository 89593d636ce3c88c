"""The metering journal written ahead of the ledger (fleet.metering.counting.ahead) with the
recorder and a real ledger, on SQLite and on PostgreSQL: an answer's usage is in the
journal when its commit returns, in the ledger with the next batch, and never twice —
whether the process stops cleanly, dies before the batch, or dies between the batch's
commit and the journal's removal."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import stat
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from fleet.clock import ManualClock
from fleet.ledger import Ledger
from fleet.ledger.stores.spend import metering as metering_store
from fleet.metering.counting.ahead import AheadLog
from fleet.metering.counting.events import QuotaSignal, UsageEvent
from fleet.metering.counting.journal import DIRECTORY, UsageJournal
from fleet.metering.counting.recorder import Recorder
from tests.unit.chat_fakes import T0
from tests.unit.fleet.ledger.test_ledger_metering import event, signal


def usage(n: int) -> UsageEvent:
    return replace(event(f"agent-{n}"), request_id=f"req_{n}")


def segments(state: Path) -> list[Path]:
    directory = state / DIRECTORY
    return sorted(directory.glob("usage-*.jsonl")) if directory.is_dir() else []


def lines(state: Path) -> int:
    return sum(len(path.read_text().splitlines()) for path in segments(state))


def written_ahead(
    state: Path, ledger: Ledger, write: object = None, once: object = None
) -> Recorder:
    """A recorder writing ahead to ``state``'s journal; ``write`` its batches' sink,
    ``once`` the write of a failed batch's segments (the ledger's by default)."""
    sink = ledger.metering.record_metering if write is None else write
    journal = UsageJournal(
        state / DIRECTORY,
        ledger.metering.record_metering_once if once is None else once,  # type: ignore[arg-type]
        ManualClock(T0),
    )
    log = AheadLog(state / DIRECTORY, ManualClock(T0), journal.settle)
    return Recorder(ledger.metering.record_metering, interval=3600, ahead=(log, sink))  # type: ignore[arg-type]


def replay(state: Path, ledger: Ledger) -> UsageJournal:
    return UsageJournal(state / DIRECTORY, ledger.metering.record_metering_once, ManualClock(T0))


class DownFirst:
    """The ledger's batch write, refusing its first ``failures`` calls."""

    def __init__(self, ledger: Ledger, failures: int) -> None:
        self._ledger = ledger
        self.failures = failures
        self.calls = 0

    async def __call__(
        self,
        usage: Sequence[UsageEvent],
        signals: Sequence[QuotaSignal],
        /,
        *,
        keys: Sequence[str] = (),
    ) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("database is locked")
        await self._ledger.metering.record_metering(usage, signals, keys=keys)


async def refused_once(
    key: str, usage: Sequence[UsageEvent], signals: Sequence[QuotaSignal]
) -> bool:
    """The ledger's write of a segment, while the ledger is down."""
    raise RuntimeError("database is locked")


async def test_a_commit_is_in_the_journal_at_once_and_in_the_ledger_with_the_next_batch(
    tmp_path: Path, ledger: Ledger
) -> None:
    """The commit returns with the row in a 0600 segment and none in the ledger; the next
    batch writes it, as metered, and removes the segment."""
    recorder = written_ahead(tmp_path, ledger)
    recorder.start()
    assert not recorder.waits
    assert await recorder.commit(usage(1), [signal("x-remaining", "7")])
    [segment] = segments(tmp_path)
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    assert stat.S_IMODE(segment.parent.stat().st_mode) == 0o700
    assert [json.loads(line)["kind"] for line in segment.read_text().splitlines()] == [
        "usage",
        "signal",
    ]
    assert await ledger.metering.usage_events() == []
    await recorder.flush()
    assert await ledger.metering.usage_events() == [usage(1)]
    assert segments(tmp_path) == []
    await recorder.stop()
    assert await ledger.metering.usage_events() == [usage(1)]


async def test_a_segment_found_again_after_its_batch_went_in_writes_nothing(
    tmp_path: Path, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash between the batch's commit and the segment's removal: the batch claimed the
    segment, so the next start's replay only removes it."""
    recorder = written_ahead(tmp_path, ledger)
    recorder.start()
    for n in (1, 2):
        assert await recorder.commit(usage(n))
    [segment] = segments(tmp_path)
    copy = tmp_path / "copy"
    shutil.copy(segment, copy)
    await recorder.stop()
    assert segments(tmp_path) == []
    shutil.copy(copy, segment)  # as if the removal never happened
    with caplog.at_level(logging.WARNING):
        assert await replay(tmp_path, ledger).replay() == 0
    assert "already in the ledger" in caplog.text
    assert await ledger.metering.usage_events() == [usage(1), usage(2)]
    assert segments(tmp_path) == []


async def test_rows_of_a_process_that_died_before_its_batch_are_written_once_at_the_next_start(
    tmp_path: Path, ledger: Ledger
) -> None:
    """Answers committed to the journal, then the process gone before any batch: the
    next start writes every row once; a start after it, none."""
    recorder = written_ahead(tmp_path, ledger)
    recorder.start()
    for n in (1, 2, 3):
        assert await recorder.commit(usage(n))
    assert await ledger.metering.usage_events() == []
    assert lines(tmp_path) == 3  # what a SIGKILL now would leave
    assert await replay(tmp_path, ledger).replay() == 3
    assert await ledger.metering.usage_events() == [usage(1), usage(2), usage(3)]
    assert await replay(tmp_path, ledger).replay() == 0
    assert len(await ledger.metering.usage_events()) == 3


async def test_a_refused_batch_keeps_its_segment_and_the_next_batch_claims_it(
    tmp_path: Path, ledger: Ledger
) -> None:
    """The ledger refuses a batch: its segment stays, and is written before the next
    batch, as the replay writes one (it may have gone in all the same: its rows are not
    offered again, nor is the row after it appended to it); every row goes in once."""
    down = DownFirst(ledger, failures=1)
    recorder = written_ahead(tmp_path, ledger, down)
    assert await recorder.commit(usage(1)) is False  # not started: written at once, refused
    [refused] = segments(tmp_path)
    recorder.start()
    assert await recorder.commit(usage(2))
    assert len(segments(tmp_path)) == 2  # the row after it went to a segment of its own
    assert refused.read_text().count("\n") == 1
    await recorder.flush()
    assert down.calls == 2
    assert await ledger.metering.usage_events() == [usage(1), usage(2)]
    assert segments(tmp_path) == []
    await recorder.stop()
    assert await replay(tmp_path, ledger).replay() == 0


async def test_a_ledger_down_at_shutdown_leaves_the_segments_for_the_next_start(
    tmp_path: Path,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the ledger did not take by the end stays in the journal (no second copy of
    it), and the next start writes it once."""
    real_sleep = asyncio.sleep

    async def no_wait(delay: float, result: object = None) -> object:
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", no_wait)  # the retries at shutdown pass at once
    down = DownFirst(ledger, failures=1_000)
    recorder = written_ahead(tmp_path, ledger, down, refused_once)
    recorder.start()
    for n in (1, 2):
        assert await recorder.commit(usage(n))
    with caplog.at_level(logging.ERROR):
        await recorder.stop()
    assert "kept in usage-" in caplog.text
    assert lines(tmp_path) == 2
    assert len(segments(tmp_path)) == 1  # one segment however often the ledger refused
    assert await ledger.metering.usage_events() == []
    assert await replay(tmp_path, ledger).replay() == 2
    assert await ledger.metering.usage_events() == [usage(1), usage(2)]
    assert segments(tmp_path) == []


async def test_a_read_of_usage_right_after_an_answer_has_its_row(
    tmp_path: Path, ledger: Ledger
) -> None:
    """With the recorder's flush as the store's ``pending``, a sum read right after an
    answer's commit — a run's spend as it ends — counts that answer."""
    recorder = written_ahead(tmp_path, ledger)
    recorder.start()
    ledger.metering.pending = recorder.flush
    try:
        assert await recorder.commit(usage(1))
        [total] = await ledger.metering.usage_between("agent-1", T0, T0)
        assert total.requests == 1
        assert await ledger.metering.usage_events() == [usage(1)]
    finally:
        ledger.metering.pending = None
        await recorder.stop()


class LostAnswer:
    """The ledger's batch write whose first batch goes in but is answered as failed: the
    connection lost as its ``COMMIT`` went."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.calls = 0

    async def __call__(
        self,
        usage: Sequence[UsageEvent],
        signals: Sequence[QuotaSignal],
        /,
        *,
        keys: Sequence[str] = (),
    ) -> None:
        self.calls += 1
        await self._ledger.metering.record_metering(usage, signals, keys=keys)
        if self.calls == 1:
            raise RuntimeError("server closed the connection unexpectedly")


async def test_a_batch_that_went_in_though_it_failed_is_written_once_and_the_rows_after_go_in(
    tmp_path: Path, ledger: Ledger
) -> None:
    """A batch committed whose answer was lost: it is not written again, the batches after
    it go in, and a start after that (even one without a clean stop) writes nothing more
    and loses nothing."""
    lost = LostAnswer(ledger)
    recorder = written_ahead(tmp_path, ledger, lost)
    assert await recorder.commit(usage(1)) is False  # in the ledger, answered as failed
    recorder.start()
    assert await recorder.commit(usage(2))
    async with asyncio.timeout(30):
        await recorder.flush()
    assert await ledger.metering.usage_events() == [usage(1), usage(2)]
    assert await recorder.commit(usage(3))  # the process dies before this row's batch
    assert await replay(tmp_path, ledger).replay() == 1
    assert await ledger.metering.usage_events() == [usage(1), usage(2), usage(3)]
    await recorder.stop()


async def test_a_read_of_usage_while_the_ledger_refuses_the_batches_does_not_wait_for_them(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch writes fail (the ledger refuses them): a read of usage waits for no
    catch-up that cannot come — however long the store would let it — and reads what is
    in the ledger; once the ledger takes the batches again, the rows are read."""
    monkeypatch.setattr(metering_store, "CATCH_UP_WAIT", 3600.0)
    down = DownFirst(ledger, failures=1_000)

    async def once(key: str, usage: Sequence[UsageEvent], signals: Sequence[QuotaSignal]) -> bool:
        if down.failures:
            raise RuntimeError("database is locked")
        return await ledger.metering.record_metering_once(key, usage, signals)

    recorder = Recorder(
        ledger.metering.record_metering,
        interval=0.01,
        ahead=written_ahead(tmp_path, ledger, down, once)._ahead,
    )
    recorder.start()
    ledger.metering.pending = recorder.caught_up
    try:
        assert await recorder.commit(usage(1))
        async with asyncio.timeout(60):  # a hang, not a speed: the wait was an hour
            assert await ledger.metering.usage_events() == []
        down.failures = 0
        assert await ledger.metering.usage_events() == [usage(1)]
    finally:
        ledger.metering.pending = None
        await recorder.stop()
