"""The journal written ahead of the ledger: each metered request's row appended to a file
as it is recorded, so an answer's usage is safe the moment its agent gets it — without a
ledger transaction per answer.

The proxy's recorder appends every row it is handed to the open **segment**, a file
``usage-<time>-<id>.jsonl`` in the journal's directory (the directory 0700, the file 0600,
one JSON line a row, the lines :mod:`fleet.metering.counting.journal` reads), with one
``write`` to a file kept open: once that call returns the row survives the process being
killed (the kernel has it), as a row committed to SQLite in WAL mode with ``synchronous =
NORMAL`` does. Rows go to the ledger in batches, as before; each batch **closes** the open
segment first (the next row opens a new one), and the batch's transaction claims the
names of the segments it empties (``processed_events``, the claims
:meth:`~fleet.ledger.stores.spend.metering.MeteringStore.record_metering_once` makes), so
that a segment whose rows are in the ledger is never written again: once the batch is in,
its segments are removed; a crash between the two leaves a segment the next start's replay
(:meth:`~fleet.metering.counting.journal.UsageJournal.replay`) finds claimed and only
removes; a crash before it leaves one the replay writes, once.

A batch that fails may have gone in all the same (the connection lost as its ``COMMIT``
went, the caller cancelled once it had begun), so its rows are not offered again with the
next batch, nor its last segment opened again for the rows to come: a segment claimed
already would take them with it. Its segments are **settled** instead, before the next
batch, each as the replay writes one (:meth:`~fleet.metering.counting.journal.UsageJournal.
settle`: its rows under its name unless that name is claimed); until they are, no new batch
is taken, and the rows to come gather in one open segment however long the ledger is down.
A segment's rows are all in the batch that closes it: rows are appended and batches taken
on the event loop, with nothing in between.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final

from fleet.clock import Clock
from fleet.metering.counting.events import QuotaSignal, UsageEvent
from fleet.metering.counting.journal import (
    SUFFIX,
    KeyedSink,
    UsageJournal,
    signal_line,
    usage_line,
)
from fleet.private_files import open_private, private_dir

log = logging.getLogger(__name__)

PREFIX: Final = "usage-"


class AheadLog:
    """The segments in ``directory``: the open one and those closed but not yet written."""

    def __init__(
        self, directory: Path, clock: Clock, settle: Callable[[Path], Awaitable[int]]
    ) -> None:
        self._dir = directory
        self._clock = clock
        self._settle = settle  # the journal's: one segment written unless claimed
        self._fd: int | None = None
        self._open: Path | None = None
        self._closed: list[Path] = []  # closed, their rows not yet in the ledger
        self._doubted: list[Path] = []  # their batch failed: it may have gone in

    @classmethod
    def of(cls, journal: UsageJournal | None, clock: Clock) -> tuple[AheadLog, KeyedSink] | None:
        """The journal's segments and the write that claims them, when ``journal`` has one
        (else the proxy commits each answer's usage to the ledger itself)."""
        if journal is None or journal.write is None:
            return None
        return cls(journal.directory, clock, journal.settle), journal.write

    def append(self, usage: Sequence[UsageEvent], signals: Sequence[QuotaSignal] = ()) -> None:
        """Append rows to the open segment (opening one if none is) in one write. Raises
        ``OSError``: the rows are then in no segment."""
        lines = [json.dumps(usage_line(event)) for event in usage]
        lines += [json.dumps(signal_line(signal)) for signal in signals]
        if not lines:
            return
        data = "".join(line + "\n" for line in lines).encode()
        fd = self._fd if self._fd is not None else self._start()
        written = os.write(fd, data)
        if written != len(data):  # a full disk: the line is torn, the segment done with
            self.close()
            raise OSError(f"wrote {written} of {len(data)} bytes to the metering journal")

    def _start(self) -> int:
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%S")
        path = private_dir(self._dir) / f"{PREFIX}{stamp}-{uuid.uuid4().hex}{SUFFIX}"
        self._fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_EXCL)
        self._open = path
        return self._fd

    def close(self) -> None:
        """Close the open segment, if there is one: its rows go with the next batch."""
        fd, path = self._fd, self._open
        self._fd = self._open = None
        if fd is not None:
            os.close(fd)
        if path is not None:
            self._closed.append(path)

    def take(self) -> list[Path]:
        """Close the open segment and hand over every segment not yet written: the rows of
        the batch taken with them are exactly theirs. :meth:`written` or :meth:`doubt`
        once the batch is written or refused."""
        self.close()
        taken, self._closed = self._closed, []
        return taken

    @staticmethod
    def keys(segments: Sequence[Path]) -> list[str]:
        """The names a batch claims for ``segments`` (what the replay offers them under)."""
        return [path.stem for path in segments]

    def written(self, segments: Sequence[Path]) -> None:
        """``segments``' rows are in the ledger (and their names claimed): remove them."""
        for path in segments:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # claimed: the next start only removes it
                log.warning("could not remove the written metering journal %s: %s", path, exc)

    def doubt(self, segments: Sequence[Path]) -> None:
        """The batch of ``segments`` failed, and may have gone in all the same: they are
        settled one by one (:meth:`settle`) before the next batch; their rows are not
        offered again in it."""
        self._doubted += segments

    async def settle(self) -> None:
        """Write each segment of a failed batch unless its name is claimed (its batch went
        in after all), and remove it. Raises what the ledger raises: the segments left are
        settled before the next batch again."""
        while self._doubted:
            await self._settle(self._doubted[0])
            del self._doubted[0]

    def spill(self) -> list[Path]:
        """Close the open segment and stop offering every segment not yet written: they stay
        in the directory, claimed by no batch, for the next start's replay to write (the
        caller lets go of the rows it held for them: a ledger refusing batches for long)."""
        self.close()
        spilled, self._closed = self._closed, []
        return spilled

    def kept(self) -> list[Path]:
        """Close the open segment; the segments still holding rows the ledger lacks (at
        shutdown, for the next start)."""
        self.close()
        return [*self._doubted, *self._closed]
