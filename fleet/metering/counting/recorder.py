"""Batched writes of what the proxy metered: requests never wait on the ledger.

The proxy hands each finished request to :meth:`Recorder.add` (no await, no I/O); a
background task writes whatever has gathered every ``interval`` seconds, in one
transaction. ``stop`` writes the rest, so a clean shutdown loses nothing; a write that fails
is retried with the next batch. What the ledger still does not take at shutdown, after
retries, is handed to ``keep`` (the journal, :mod:`fleet.metering.counting.journal`, which the next
start writes to the ledger); only when there is none, or it fails too, is it given up, with
the count of what was lost in the log.

An answer that carries usage is instead :meth:`Recorder.commit` ted: the writer is woken at
once and the caller waits until the row is in the ledger, before the agent gets the
answer's last bytes — so a crash (even SIGKILL) never loses the usage of an answer an agent
received. A commit that finds no write in flight writes at once, itself, with whatever
has gathered (no trip to the background task and back); commits that arrive while a write
is in flight go together in the next one (a group commit), so many concurrent answers cost
one transaction, not one each. After a failed write, the next is tried only once
:data:`RETRY_AFTER` has passed, by the task (commits meanwhile wake it, no more): a ledger
that refuses is not tried once per answer. Once :meth:`stop` has begun, commits leave their
rows to its last write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final

from fleet.metering.counting.events import QuotaSignal, UsageEvent

log = logging.getLogger(__name__)

Sink = Callable[[Sequence[UsageEvent], Sequence[QuotaSignal]], Awaitable[None]]
Keep = Callable[[Sequence[UsageEvent], Sequence[QuotaSignal]], Path]
"""Keeps what the ledger did not take at shutdown for the next start; where. Raises
``OSError``."""
MAX_PENDING: Final = 200_000  # rows held while the ledger fails; beyond it the oldest go
_FINAL_ATTEMPTS: Final = 5
STOP_WAIT: Final = 10.0  # seconds stop() lets a write in flight finish before cancelling it
RETRY_AFTER: Final = 0.5  # seconds (or the interval, if shorter) from a failed write to the next


class Recorder:
    def __init__(self, sink: Sink, *, interval: float = 0.5, keep: Keep | None = None) -> None:
        self._sink = sink
        self._keep = keep
        self._interval = interval
        self._usage: list[UsageEvent] = []
        self._signals: list[QuotaSignal] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._written = asyncio.Condition()
        self._generation = 0  # batches written so far
        self._waiters: list[asyncio.Future[None]] = []  # commits in the pending batch
        self._writing = asyncio.Lock()  # held by whoever writes a batch
        self._now: set[asyncio.Task[None]] = set()  # commits' own writes, on their way
        self._stopping = False  # from stop()'s start to its end
        self._halt = asyncio.Event()  # stop() cuts the task's pause after a failure short
        self._retry_at = 0.0  # loop time before which no write is tried (one failed)
        self.dropped = 0

    def add(self, event: UsageEvent, signals: Sequence[QuotaSignal] = ()) -> None:
        self._usage.append(event)
        self._signals.extend(signals)
        if len(self._usage) + len(self._signals) > MAX_PENDING:
            excess = len(self._usage) - MAX_PENDING // 2
            if excess > 0:
                del self._usage[:excess]
                self.dropped += excess
                log.error("the ledger is not taking usage; dropped %d oldest events", excess)
            # Rate-limit rows go stale anyway; unbounded, they would push out usage rows.
            stale = len(self._signals) - MAX_PENDING // 2
            if stale > 0:
                del self._signals[:stale]

    async def commit(
        self, event: UsageEvent, signals: Sequence[QuotaSignal] = (), *, wait: float = 5.0
    ) -> bool:
        """Add ``event`` and wait (at most ``wait`` seconds) until it is in the ledger;
        whether it is. A ledger that does not take it within ``wait`` keeps it pending, as
        :meth:`add` would, and the caller goes on."""
        self.add(event, signals)
        if self._task is None and not self._stopping:
            try:
                await self._write_all()
            except Exception:
                log.exception("could not write metered usage; will retry")
                return False
            return True
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiters.append(done)
        if self._held_back():
            self._wake.set()  # the task's next write (or stop's) takes it, with what else came
        else:
            # Nothing on its way: written now, on a task of its own (a caller cancelled
            # meanwhile does not cut the write short, so it never lands twice).
            write = asyncio.ensure_future(self._write_now())
            self._now.add(write)
            write.add_done_callback(self._now.discard)
        # Not cancelled on expiry, but failed (one future and one loop turn fewer than a
        # shielded wait): the writer passes over a waiter that is done either way.
        expiry = loop.call_later(wait, _expire, done)
        try:
            await done
        except TimeoutError:
            log.error("the ledger did not take an answer's usage within %g s", wait)
            return False
        finally:
            expiry.cancel()
        return True

    def _held_back(self) -> bool:
        """Whether a commit leaves its row to the task's next write: one is on its way,
        stop() has begun (its last write takes it), or the last write failed a moment ago."""
        return (
            self._writing.locked()
            or self._stopping
            or asyncio.get_running_loop().time() < self._retry_at
        )

    def _failed(self) -> None:
        """A write failed: the next waits (the caller logged it)."""
        pause = min(self._interval, RETRY_AFTER)
        self._retry_at = asyncio.get_running_loop().time() + pause

    async def _write_now(self) -> None:
        """Write what has gathered; a failure (or a write already on its way) leaves it to
        the task's next write."""
        if self._held_back():
            self._wake.set()
            return
        try:
            async with self._writing:
                await self._write_all()
        except Exception:
            log.exception("could not write metered usage; will retry")
            self._failed()
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._halt.clear()
            self._task = asyncio.create_task(self._run(), name="metering-recorder")

    async def flush(self) -> None:
        """Wait until everything added before this call is in the ledger."""
        if self._task is None:
            await self._write_all()
            return
        async with self._written:
            target = self._generation + 2  # the batch in flight may predate our rows
            while self._generation < target:
                self._wake.set()  # each batch waited for, not only the first, starts now
                await self._written.wait()

    async def stop(self, wait: float = STOP_WAIT) -> None:
        """Stop the background task and write what is left. A write in flight is let
        finish (up to ``wait`` seconds) rather than cancelled: cancelled after its commit
        began, its batch would be written twice."""
        self._stopping = True
        try:
            await self._stop(wait)
        finally:
            self._stopping = False

    async def _stop(self, wait: float) -> None:
        if self._task is not None:
            self._halt.set()
            self._wake.set()
            writes = {self._task, *self._now}
            try:
                async with asyncio.timeout(wait):
                    await asyncio.shield(asyncio.gather(*writes))
            except TimeoutError:
                for write in writes:
                    write.cancel()
                await asyncio.wait(writes)
            self._task = None
        failures = 0
        # Until nothing is left: a commit that came during a write here is in the next.
        while self._usage or self._signals:
            try:
                await self._write_all()
            except Exception:
                failures += 1
                log.exception("could not write metered usage (attempt %d)", failures)
                await asyncio.sleep(0.2 * failures)
                if failures == _FINAL_ATTEMPTS:
                    break
        else:
            return
        lost = len(self._usage)
        if self._keep is not None:
            try:
                where = self._keep(self._usage, self._signals)
            except OSError:
                log.exception("could not keep the metered requests the ledger did not take")
            else:
                log.error(
                    "the ledger did not take %d metered requests at shutdown; kept in %s for"
                    " the next start",
                    lost,
                    where,
                )
                self._usage, self._signals = [], []
                return
        log.error("gave up writing %d metered requests at shutdown", lost)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            pause = self._retry_at - loop.time()
            if pause > 0:  # not a hot loop on commits while the ledger refuses
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await self._halt.wait()
            self._wake.clear()
            if self._stopping:
                return  # stop() writes what is left
            try:
                async with self._writing:
                    await self._write_all()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not write metered usage; will retry")
                self._failed()
                continue
            async with self._written:
                self._generation += 1
                self._written.notify_all()

    async def _write_all(self) -> None:
        usage, signals, waiters = self._usage, self._signals, self._waiters
        if not usage and not signals:
            return
        self._usage, self._signals, self._waiters = [], [], []
        try:
            await self._sink(usage, signals)
        except BaseException:
            # Put them back in front, in order, for the next attempt.
            self._usage[:0] = usage
            self._signals[:0] = signals
            self._waiters[:0] = waiters
            raise
        for done in waiters:
            if not done.done():
                done.set_result(None)


def _expire(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_exception(TimeoutError())
