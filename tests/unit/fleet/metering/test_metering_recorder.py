"""Tests for fleet.metering.counting.recorder: batched, retried writes of metered requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleet.metering.counting import recorder as recorder_module
from fleet.metering.counting.events import Outcome, QuotaSignal, Tokens, UsageEvent
from fleet.metering.counting.recorder import Recorder

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEADLINE = 5.0  # seconds a background write may take before the test fails


def usage(n: int) -> UsageEvent:
    return UsageEvent(
        at=T0 + timedelta(seconds=n),
        agent=f"agent-{n}",
        provider="anthropic",
        api="anthropic",
        requested_model="m",
        served_model="m",
        tokens=Tokens(input=n, output=1),
        stream=True,
        status=200,
        outcome=Outcome.OK,
        latency_ms=1.0,
        ttfb_ms=0.5,
        request_id=f"req_{n}",
    )


def signal(n: int) -> QuotaSignal:
    return QuotaSignal(T0, "a", "anthropic", "x-ratelimit", "x-ratelimit-remaining-tokens", str(n))


class Sink:
    """Records each batch; fails its first ``failures`` calls; may be held shut."""

    def __init__(self, failures: int = 0) -> None:
        self.batches: list[tuple[list[UsageEvent], list[QuotaSignal]]] = []
        self.calls = 0
        self.failures = failures
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def __call__(self, events: Sequence[UsageEvent], signals: Sequence[QuotaSignal]) -> None:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("database is locked")
        self.batches.append((list(events), list(signals)))

    @property
    def usage(self) -> list[UsageEvent]:
        return [event for events, _ in self.batches for event in events]

    @property
    def signals(self) -> list[QuotaSignal]:
        return [row for _, signals in self.batches for row in signals]


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds, or fail after DEADLINE seconds."""
    async with asyncio.timeout(DEADLINE):
        while not condition():  # noqa: ASYNC110 (the sink is polled, not signalled)
            await asyncio.sleep(0.005)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The recorder's retry waits at shutdown, recorded instead of slept."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def no_wait(delay: float, result: object = None) -> object:
        asked.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(recorder_module.asyncio, "sleep", no_wait)
    return asked


async def test_add_does_not_write_until_the_task_runs() -> None:
    """add() only queues: nothing reaches the sink from add() itself."""
    sink = Sink()
    recorder = Recorder(sink)
    recorder.add(usage(1), [signal(1)])
    await asyncio.sleep(0)
    assert sink.calls == 0
    await recorder.stop()
    assert sink.batches == [([usage(1)], [signal(1)])]


async def test_rows_gathered_between_writes_go_in_one_batch() -> None:
    """Everything added before a write goes to the sink in one call, in order."""
    sink = Sink()
    recorder = Recorder(sink, interval=3600)
    recorder.start()
    for n in range(3):
        recorder.add(usage(n), [signal(n), signal(n + 10)])
    await recorder.flush()
    assert sink.batches[0] == (
        [usage(0), usage(1), usage(2)],
        [signal(0), signal(10), signal(1), signal(11), signal(2), signal(12)],
    )
    assert sink.usage == [usage(0), usage(1), usage(2)]  # and never twice
    await recorder.stop()


async def test_the_background_task_writes_every_interval() -> None:
    """Without flush or stop, rows reach the sink on the task's own schedule."""
    sink = Sink()
    recorder = Recorder(sink, interval=0.01)
    recorder.start()
    recorder.add(usage(1))
    await until(lambda: sink.usage == [usage(1)])
    recorder.add(usage(2))
    await until(lambda: sink.usage == [usage(1), usage(2)])
    assert all(len(events) == 1 for events, _ in sink.batches if events)
    await recorder.stop()


async def test_flush_waits_for_the_write_to_finish() -> None:
    """flush() returns only once the sink has taken the rows, not when it starts."""
    sink = Sink()
    sink.gate = asyncio.Event()
    recorder = Recorder(sink, interval=0.01)
    recorder.start()
    recorder.add(usage(1))
    flushing = asyncio.create_task(recorder.flush())
    await until(sink.entered.is_set)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not flushing.done()
    assert sink.batches == []
    sink.gate.set()
    async with asyncio.timeout(DEADLINE):
        await flushing
    assert sink.usage == [usage(1)]
    await recorder.stop()


async def test_flush_without_a_task_writes_directly() -> None:
    """Before start() (or after stop()), flush writes at once."""
    sink = Sink()
    recorder = Recorder(sink)
    recorder.add(usage(1))
    await recorder.flush()
    assert sink.batches == [([usage(1)], [])]
    await recorder.flush()
    assert sink.calls == 1  # nothing left: the sink is not called for nothing


async def test_stop_writes_the_rest() -> None:
    """stop() cancels the task and writes what it had not written yet."""
    sink = Sink()
    recorder = Recorder(sink, interval=3600)
    recorder.start()
    recorder.add(usage(1), [signal(1)])
    recorder.add(usage(2))
    await recorder.stop()
    assert sink.usage == [usage(1), usage(2)]
    assert sink.signals == [signal(1)]


async def test_stop_during_a_stuck_write_loses_nothing() -> None:
    """A write still stuck past stop()'s wait is cancelled, puts its rows back, and stop()
    writes them."""
    sink = Sink()
    sink.gate = asyncio.Event()  # never set: the first write hangs until cancelled
    recorder = Recorder(sink, interval=0.01)
    recorder.start()
    recorder.add(usage(1))
    await until(sink.entered.is_set)
    sink.gate = None  # the final write goes through
    async with asyncio.timeout(DEADLINE):
        await recorder.stop(wait=0.05)
    assert sink.calls == 2
    assert sink.batches == [([usage(1)], [])]


async def test_a_failing_sink_keeps_the_rows_and_retries_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed write is retried with the next batch: nothing lost, nothing twice, the
    order kept."""
    sink = Sink(failures=2)
    recorder = Recorder(sink, interval=0.01)
    recorder.start()
    recorder.add(usage(1), [signal(1)])
    await until(lambda: sink.calls >= 1)
    recorder.add(usage(2), [signal(2)])
    recorder.add(usage(3))
    await until(lambda: len(sink.usage) == 3)
    assert sink.usage == [usage(1), usage(2), usage(3)]
    assert sink.signals == [signal(1), signal(2)]
    assert sink.calls >= 3
    await recorder.stop()
    assert sink.usage == [usage(1), usage(2), usage(3)]
    retries = [r for r in caplog.records if "will retry" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.ERROR, logging.ERROR]


async def test_flush_waits_through_failures_until_written() -> None:
    """flush() does not return while the sink fails; it returns once the rows are in."""
    sink = Sink(failures=3)
    recorder = Recorder(sink, interval=0.01)
    recorder.start()
    recorder.add(usage(1))
    async with asyncio.timeout(DEADLINE):
        await recorder.flush()
    assert sink.usage == [usage(1)]
    assert sink.calls >= 4
    await recorder.stop()


async def test_stop_retries_a_failing_sink_with_growing_waits(sleeps: list[float]) -> None:
    """At shutdown a failing write is retried after 0.2 s, 0.4 s…, then succeeds."""
    sink = Sink(failures=2)
    recorder = Recorder(sink)
    recorder.add(usage(1), [signal(1)])
    await recorder.stop()
    assert sleeps == [0.2, 0.4]
    assert sink.batches == [([usage(1)], [signal(1)])]


async def test_stop_gives_up_after_five_attempts_and_says_how_many_were_lost(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    """A sink that never works is tried five times; the log counts the lost requests."""
    sink = Sink(failures=1_000)
    recorder = Recorder(sink)
    recorder.add(usage(1))
    recorder.add(usage(2))
    await recorder.stop()
    assert sink.calls == 5
    assert sleeps == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert caplog.records[-1].getMessage() == "gave up writing 2 metered requests at shutdown"


class Kept:
    """A journal's ``keep``: records what it is handed; may fail like a full disk."""

    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.handed: list[tuple[list[UsageEvent], list[QuotaSignal]]] = []

    def __call__(self, events: Sequence[UsageEvent], signals: Sequence[QuotaSignal]) -> Path:
        if self.fails:
            raise OSError(28, "No space left on device")
        self.handed.append((list(events), list(signals)))
        return Path("/state/metering-journal/usage-1.jsonl")


async def test_what_the_ledger_does_not_take_at_shutdown_is_kept_not_lost(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    """After the last attempts fail, every pending row goes to ``keep`` in order, once,
    and the log says where, not that it was lost."""
    sink, kept = Sink(failures=1_000), Kept()
    recorder = Recorder(sink, keep=kept)
    recorder.add(usage(1), [signal(1)])
    recorder.add(usage(2))
    await recorder.stop()
    assert sink.calls == 5
    assert kept.handed == [([usage(1), usage(2)], [signal(1)])]
    message = caplog.records[-1].getMessage()
    assert message.startswith("the ledger did not take 2 metered requests at shutdown; kept in")
    assert "gave up" not in caplog.text


async def test_a_ledger_that_takes_the_rest_at_shutdown_leaves_nothing_to_keep(
    sleeps: list[float],
) -> None:
    """``keep`` is only for what the ledger did not take."""
    sink, kept = Sink(failures=2), Kept()
    recorder = Recorder(sink, keep=kept)
    recorder.add(usage(1))
    await recorder.stop()
    assert sink.usage == [usage(1)] and kept.handed == []


async def test_a_keep_that_fails_too_gives_up_and_says_so(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    """A journal that cannot be written leaves the old last word: the count lost."""
    recorder = Recorder(Sink(failures=1_000), keep=Kept(fails=True))
    recorder.add(usage(1))
    await recorder.stop()
    assert caplog.records[-1].getMessage() == "gave up writing 1 metered requests at shutdown"


async def test_beyond_max_pending_the_oldest_usage_goes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Past MAX_PENDING rows the oldest usage events are dropped down to half, counted
    in ``dropped`` and logged."""
    monkeypatch.setattr(recorder_module, "MAX_PENDING", 10)
    sink = Sink()
    recorder = Recorder(sink)
    for n in range(10):
        recorder.add(usage(n))
    assert recorder.dropped == 0
    recorder.add(usage(10))
    assert recorder.dropped == 6
    assert "dropped 6 oldest events" in caplog.text
    await recorder.flush()
    assert sink.usage == [usage(n) for n in range(6, 11)]


async def test_beyond_max_pending_signals_are_bounded_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rate-limit rows are held to half of MAX_PENDING as well (oldest first), so they
    cannot grow without bound nor push out usage rows that fit."""
    monkeypatch.setattr(recorder_module, "MAX_PENDING", 10)
    sink = Sink()
    recorder = Recorder(sink)
    for n in range(8):
        recorder.add(usage(n), [signal(3 * n), signal(3 * n + 1), signal(3 * n + 2)])
    assert recorder.dropped == 3  # 8 usage rows: only those beyond half go
    await recorder.flush()
    assert sink.usage == [usage(n) for n in range(3, 8)]
    assert sink.signals == [signal(n) for n in range(19, 24)]


async def test_commit_returns_once_its_row_is_written() -> None:
    """commit() wakes the writer at once and returns True when the row is in the sink."""
    sink = Sink()
    recorder = Recorder(sink, interval=60.0)
    recorder.start()
    try:
        async with asyncio.timeout(DEADLINE):
            assert await recorder.commit(usage(1), [signal(1)])
        assert sink.batches == [([usage(1)], [signal(1)])]
    finally:
        await recorder.stop()


async def test_commits_waiting_on_one_write_go_together_in_the_next() -> None:
    """Commits that come while a write is in flight are one batch, each told when it is in."""
    sink = Sink()
    sink.gate = asyncio.Event()
    recorder = Recorder(sink, interval=60.0)
    recorder.start()
    try:
        first = asyncio.create_task(recorder.commit(usage(1)))
        await sink.entered.wait()
        later = [asyncio.create_task(recorder.commit(usage(n))) for n in (2, 3)]
        await asyncio.sleep(0)
        sink.gate.set()
        async with asyncio.timeout(DEADLINE):
            assert await asyncio.gather(first, *later) == [True, True, True]
        assert [len(events) for events, _ in sink.batches] == [1, 2]
    finally:
        await recorder.stop()


async def test_a_commit_the_ledger_does_not_take_in_time_stays_pending() -> None:
    """Past ``wait`` the caller goes on (False); the row is written with a later batch."""
    sink = Sink()
    sink.gate = asyncio.Event()
    recorder = Recorder(sink, interval=60.0)
    recorder.start()
    try:
        async with asyncio.timeout(DEADLINE):
            assert not await recorder.commit(usage(1), wait=0.01)
        sink.gate.set()
        await recorder.flush()
        assert sink.usage == [usage(1)]
    finally:
        await recorder.stop()


async def test_stop_lets_a_write_in_flight_finish_not_write_it_twice() -> None:
    """A batch being written when stop() comes is written once: let finish, not cancelled
    (a cancel after its commit began would have it written again)."""
    sink = Sink()
    sink.gate = asyncio.Event()
    recorder = Recorder(sink, interval=60.0)
    recorder.start()
    committed = asyncio.create_task(recorder.commit(usage(1)))
    await sink.entered.wait()
    stopping = asyncio.create_task(recorder.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()
    sink.gate.set()
    async with asyncio.timeout(DEADLINE):
        await stopping
        assert await committed
    assert sink.calls == 1
    assert sink.usage == [usage(1)]


async def test_after_a_failed_write_commits_wait_for_the_retry_not_try_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ledger that refuses is tried once per pause, not once per answer: commits that come
    meanwhile only wake the task, whose next write takes them all."""
    monkeypatch.setattr(recorder_module, "RETRY_AFTER", 3600.0)
    sink = Sink(failures=1)
    recorder = Recorder(sink, interval=3600.0)
    recorder.start()
    try:
        async with asyncio.timeout(DEADLINE):
            assert not await recorder.commit(usage(0), wait=0.01)
            assert sink.calls == 1
            for n in range(1, 20):
                assert not await recorder.commit(usage(n), wait=0.01)
        assert sink.calls == 1
    finally:
        await recorder.stop()
    assert sink.batches == [([usage(n) for n in range(20)], [])]


async def test_a_commit_during_stop_goes_in_its_last_write() -> None:
    """An answer finishing while stop() runs has its row in stop()'s last write, not in a
    write of its own that stop() would not wait for (its row left in memory, lost)."""
    written: list[UsageEvent] = []

    async def sink(events: Sequence[UsageEvent], signals: Sequence[QuotaSignal]) -> None:
        for _ in range(10):  # the ledger's lock, a trip to its thread
            await asyncio.sleep(0)
        written.extend(events)

    recorder = Recorder(sink, interval=3600.0)
    recorder.start()
    await asyncio.sleep(0)
    stopping = asyncio.create_task(recorder.stop())
    await asyncio.sleep(0)
    late = asyncio.create_task(recorder.commit(usage(1)))
    async with asyncio.timeout(DEADLINE):
        await stopping
        assert written == [usage(1)]  # when stop() returns, before the ledger closes
        assert await late
