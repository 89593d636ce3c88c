"""Batches of rows appended in one trip to a thread: the writes on the proxy's hot path.

The ledger's own connection (aiosqlite) goes to its thread once per statement, so a batch
of usage rows costs three trips — ``BEGIN``, the inserts, ``COMMIT`` — each a wake-up of
that thread and then of the event loop; at one request at a time that was a fifth of the
proxy's CPU. An :class:`Appender` holds a second connection to the same file, on a thread
of its own, and runs a whole transaction there in one trip. SQLite keeps the two
connections' writes apart (WAL, the busy timeout); the ledger's lock, held around each
append, keeps them from waiting on each other within the process.

A batch is all or nothing: a caller cancelled while its batch is on the thread has it
rolled back unless its ``COMMIT`` had already begun — the same window a transaction on
the ledger's own connection has — and waits for the thread to finish either way, so the
connection is never left mid-transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, Protocol

from fleet.errors import LedgerError

Statement = tuple[str, Sequence[Sequence[object]]]
"""An SQL statement and the parameter rows it runs with (``executemany``)."""


class Appender(Protocol):
    """Appends batches of rows in one transaction each, beside the ledger's connection."""

    async def append(self, what: str, statements: Sequence[Statement]) -> None:
        """Run ``statements`` together, all or nothing; :class:`LedgerError` if refused."""

    async def close(self) -> None: ...


_PRAGMAS: Final = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
)


class _Abandoned(Exception):
    """The caller was cancelled before the batch committed: it is rolled back."""


class SqliteAppender:
    """A connection of its own to the ledger's file, used from one thread of its own."""

    def __init__(self, path: Path, conn: sqlite3.Connection, thread: ThreadPoolExecutor) -> None:
        self._path = path
        self._conn = conn
        self._thread = thread

    @classmethod
    async def open(cls, path: Path) -> SqliteAppender:
        """Connect to ``path`` (already created and migrated by the ledger's connection)."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-append")

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                for pragma in _PRAGMAS:
                    conn.execute(pragma)
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            conn = await asyncio.get_running_loop().run_in_executor(thread, connect)
        except BaseException as exc:
            thread.shutdown(wait=False)
            if isinstance(exc, sqlite3.Error):
                raise LedgerError(f"ledger {path}: cannot open: {exc}") from exc
            raise
        return cls(path, conn, thread)

    async def append(self, what: str, statements: Sequence[Statement]) -> None:
        """Run ``statements`` in one ``BEGIN IMMEDIATE`` transaction, in one trip to the
        thread; :class:`LedgerError` (nothing written) if SQLite refuses."""
        abandoned = threading.Event()
        done = asyncio.get_running_loop().run_in_executor(
            self._thread, self._write, statements, abandoned
        )
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            abandoned.set()
            await asyncio.wait({done})
            if not done.cancelled():
                done.exception()  # rolled back, or committed just before: cancelled either way
            raise
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self._path}: cannot {what}: {exc}") from exc

    def _write(self, statements: Sequence[Statement], abandoned: threading.Event) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in statements:
                if rows:
                    conn.executemany(sql, rows)
            if abandoned.is_set():
                raise _Abandoned
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        """Close the connection and let the thread go; appends cannot follow."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._conn.close)
        finally:
            self._thread.shutdown(wait=False)
