"""Batches of rows appended in one trip to a thread (the writes on the proxy's hot path), and
claims, rows inserted once each (a webhook delivery taken once), made together.

The ledger's own connection (aiosqlite) goes to its thread once per statement, so a batch
of usage rows costs three trips — ``BEGIN``, the inserts, ``COMMIT`` — each a wake-up of
that thread and then of the event loop; at one request at a time that was a fifth of the
proxy's CPU. An :class:`Appender` holds a second connection to the same file, on a thread
of its own, and runs a whole transaction there in one trip (on SQLite, on the event loop
when the file is free: see below). SQLite keeps the two
connections' writes apart (WAL, the busy timeout); the ledger's lock, held around each
append, keeps them from waiting on each other within the process.

A claim (:meth:`Appender.claim`) is a few rows inserted in order, each keyed, each insert
``ON CONFLICT DO NOTHING RETURNING``: it holds when every row went in, and stops at the
first whose key was taken. Claims go in together, one write transaction for many, exclusive
as every write of the ledger is and checked against the lease's fence
(:data:`Fence`) inside it, so two claims of one key at once are never both held. On SQLite
a claim, and a batch of appended rows alike, is made on the event loop when the file's
write lock is free at once: a third connection, which never waits for the lock (another
holds it: the write goes to the thread, which waits), writes a few rows into the WAL
without a sync (``synchronous = NORMAL``, as every connection of the ledger: committed is
kept across a crash of the process), in less time than one trip to the thread and back. It
leaves checkpoints to the thread (:data:`CHECKPOINT_EVERY`), so the loop never copies the
WAL into the file, nor waits for a copy once it has committed (a cancel there would split a
committed write from its caller, who writes it again): the write after the one that makes a
checkpoint due goes to the thread, which checkpoints and then writes, in one trip. That
write, like the first after opening, starts the WAL over, and SQLite syncs the new WAL's
header: on the thread too, so the loop never waits on the disk.

A batch is all or nothing: a caller cancelled while its batch is on the thread has it
rolled back unless its ``COMMIT`` had already begun — the same window a transaction on
the ledger's own connection has — and waits for the thread to finish either way, so the
connection is never left mid-transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from fleet.errors import LeaseLost, LedgerError
from fleet.ledger.database.engine import Database, DatabaseError

Statement = tuple[str, Sequence[Sequence[object]]]
"""An SQL statement and the parameter rows it runs with (``executemany``)."""

Claim = Sequence[tuple[str, Sequence[object]]]
"""Rows to insert in order, each by an ``INSERT … ON CONFLICT DO NOTHING RETURNING …`` and
its parameters: held when each returned its row."""

Fence = tuple[str, str, int]
"""A lease's name, its holder and the epoch it holds it at: a write is made only while the
ledger still says so (:func:`fence_lost`)."""

FENCE_READ: Final = "SELECT holder, epoch FROM leases WHERE name = ?"


def fence_lost(fence: Fence, rows: Sequence[Any]) -> LeaseLost | None:
    """The refusal of a write fenced by ``fence`` when ``rows`` (what :data:`FENCE_READ`
    found) name another holder or epoch; None while the fence holds."""
    name, holder, epoch = fence
    if rows and rows[0][0] == holder and int(rows[0][1]) == epoch:
        return None
    now = f"{rows[0][0]} (epoch {rows[0][1]})" if rows else "nobody"
    return LeaseLost(
        f"this orchestrator no longer holds the {name} lease (it is {now}'s now): "
        "nothing more is written; it steps down"
    )


class Appender(Protocol):
    """Appends batches of rows in one transaction each, beside the ledger's connection."""

    async def append(self, what: str, statements: Sequence[Statement]) -> None:
        """Run ``statements`` together, all or nothing; :class:`LedgerError` if refused."""

    async def claim(
        self, what: str, claims: Sequence[Claim], fence: Fence | None = None
    ) -> list[bool]:
        """Make ``claims`` in order in one write transaction (exclusive, checked against
        ``fence``): whether each holds. :class:`LedgerError` (nothing written) if refused,
        :class:`LeaseLost` if the fence no longer holds."""

    async def close(self) -> None: ...


_PRAGMAS: Final = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
)
_AT_ONCE: Final = (
    "PRAGMA busy_timeout = 0",  # another writer has the file: the claim goes to the thread
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA wal_autocheckpoint = 0",  # the thread's (CHECKPOINT_EVERY), never the loop's
)
CHECKPOINT_EVERY: Final = 200
"""Writes made on the event loop between two checkpoints of the WAL, run on the thread (a
claim writes about five pages: about as often as SQLite's own, every 1,000)."""
AT_ONCE_ROWS: Final = 64
"""The most rows an append writes on the event loop: a larger batch (a backlog the ledger
did not take for a while) goes to the thread, so the loop is never held long."""


T = TypeVar("T")


class _Abandoned(Exception):
    """The caller was cancelled before the batch committed: it is rolled back."""


class SqliteAppender:
    """A connection of its own to the ledger's file, used from one thread of its own; and
    one for claims made on the event loop, which never waits for the file."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        thread: ThreadPoolExecutor,
        at_once: sqlite3.Connection,
    ) -> None:
        self._path = path
        self._conn = conn
        self._thread = thread
        self._at_once = at_once  # used on the event loop only, for claims
        self._claimed = 0  # writes made on the event loop
        # The next write checkpoints the WAL first, on the thread, where it starts the WAL
        # over (a sync): the first after opening, and the one after a checkpoint fell due.
        self._restart = True

    @classmethod
    async def open(cls, path: Path) -> SqliteAppender:
        """Connect to ``path`` (already created and migrated by the ledger's connection)."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-append")

        def connect(pragmas: Sequence[str]) -> sqlite3.Connection:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                for pragma in pragmas:
                    conn.execute(pragma)
            except BaseException:
                conn.close()
                raise
            return conn

        def both() -> tuple[sqlite3.Connection, sqlite3.Connection]:
            conn = connect(_PRAGMAS)
            try:
                return conn, connect(_AT_ONCE)
            except BaseException:
                conn.close()
                raise

        try:
            conn, at_once = await asyncio.get_running_loop().run_in_executor(thread, both)
        except BaseException as exc:
            thread.shutdown(wait=False)
            if isinstance(exc, sqlite3.Error):
                raise LedgerError(f"ledger {path}: cannot open: {exc}") from exc
            raise
        return cls(path, conn, thread, at_once)

    async def append(self, what: str, statements: Sequence[Statement]) -> None:
        """Run ``statements`` in one ``BEGIN IMMEDIATE`` transaction: on the event loop when
        the file's write lock is free at once (as a claim is), else in one trip to the
        thread, which waits for it; :class:`LedgerError` (nothing written) if SQLite
        refuses."""
        if not self._restart and sum(len(rows) for _, rows in statements) <= AT_ONCE_ROWS:
            try:
                self._write(statements, None, self._at_once)
            except sqlite3.Error as exc:
                if not _busy(exc):
                    raise LedgerError(f"ledger {self._path}: cannot {what}: {exc}") from exc
            else:
                self._made()
                return
        await self._on_thread(what, functools.partial(self._write, statements))

    async def claim(
        self, what: str, claims: Sequence[Claim], fence: Fence | None = None
    ) -> list[bool]:
        """Make ``claims`` in one ``BEGIN IMMEDIATE`` transaction: whether each holds (see
        :class:`Appender`). Made here, on the event loop, when the file's write lock is free
        at once; else in one trip to the thread, which waits for it."""
        if not self._restart:
            try:
                held = self._claim(self._at_once, claims, fence)
            except sqlite3.Error as exc:
                if not _busy(exc):
                    raise LedgerError(f"ledger {self._path}: cannot {what}: {exc}") from exc
            else:
                self._made()
                return held
        claim = functools.partial(self._claim, self._conn, claims, fence)
        return await self._on_thread(what, claim)

    def _made(self) -> None:
        """A write was made on the event loop: after every :data:`CHECKPOINT_EVERY` of them,
        the next write goes to the thread, which checkpoints the WAL first (nothing is
        awaited here, after the commit)."""
        self._claimed += 1
        if self._claimed % CHECKPOINT_EVERY == 0:
            self._restart = True

    async def _on_thread(self, what: str, work: Callable[[threading.Event], T]) -> T:
        """``work`` on the thread (:meth:`_run`), the WAL checkpointed first when due: in
        the same trip, under the ledger's lock as the write is, so no write of this process
        comes between, the checkpoint completes, and this write starts the WAL over, its
        header synced here, not on the loop."""
        restart = self._restart

        def checkpointed(abandoned: threading.Event) -> T:
            if restart:
                self._checkpoint(abandoned)
            return work(abandoned)

        done = await self._run(what, checkpointed)
        if restart:
            self._restart = False
        return done

    async def _run(self, what: str, work: Callable[[threading.Event], T]) -> T:
        """``work`` on the thread; a caller cancelled meanwhile has it rolled back unless
        its ``COMMIT`` had begun, and waits for the thread to finish either way."""
        abandoned = threading.Event()
        done = asyncio.get_running_loop().run_in_executor(self._thread, work, abandoned)
        try:
            return await _to_its_end(done, abandoned.set)
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self._path}: cannot {what}: {exc}") from exc

    def _write(
        self,
        statements: Sequence[Statement],
        abandoned: threading.Event | None,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        conn = conn or self._conn
        with _immediate(conn):
            for sql, rows in statements:
                if rows:
                    conn.executemany(sql, rows)
            if abandoned is not None and abandoned.is_set():
                raise _Abandoned

    def _claim(
        self,
        conn: sqlite3.Connection,
        claims: Sequence[Claim],
        fence: Fence | None,
        abandoned: threading.Event | None = None,
    ) -> list[bool]:
        with _immediate(conn):
            if fence is not None:
                lost = fence_lost(fence, conn.execute(FENCE_READ, (fence[0],)).fetchall())
                if lost is not None:
                    raise lost
            # all() stops at a claim's first row refused: the rest of it is not inserted.
            held = [
                all(conn.execute(sql, row).fetchall() for sql, row in claim) for claim in claims
            ]
            if abandoned is not None and abandoned.is_set():
                raise _Abandoned
        return held

    def _checkpoint(self, abandoned: threading.Event) -> None:
        """Copy what the WAL holds into the file as far as readers allow (on the thread)."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def close(self) -> None:
        """Close the connection and let the thread go; appends cannot follow."""
        loop = asyncio.get_running_loop()

        def both() -> None:
            # The last connection to the file to close checkpoints the WAL (syncs): here.
            try:
                self._at_once.close()
            finally:
                self._conn.close()

        try:
            await loop.run_in_executor(self._thread, both)
        finally:
            self._thread.shutdown(wait=False)


def _busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection holds the file's write lock."""
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF == sqlite3.SQLITE_BUSY


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction on ``conn``: committed when the block ends, rolled
    back when it raises (anything, :class:`_Abandoned` too)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


async def _to_its_end(done: asyncio.Future[T], abandon: Callable[[], None]) -> T:
    """``done``'s result; a caller cancelled meanwhile calls ``abandon`` (the work rolls back
    unless its ``COMMIT`` had begun) and waits for the work to settle before it is
    cancelled itself."""
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        abandon()
        await asyncio.wait({done})
        if not done.cancelled():
            done.exception()  # rolled back, or committed just before: cancelled either way
        raise


async def claim_on(
    database: Database, what: str, claims: Sequence[Claim], fence: Fence | None
) -> list[bool]:
    """:meth:`Appender.claim` on ``database``, a statement at a time (PostgreSQL's: a row of
    a claim is sent once the one before it went in)."""
    return await settled(
        database, what, lambda abandoned: _claimed(database, claims, fence, abandoned)
    )


async def settled(
    database: Database, what: str, work: Callable[[asyncio.Event], Awaitable[T]]
) -> T:
    """``work`` on ``database`` run to its end whatever its caller does: a caller cancelled
    before the ``COMMIT`` is sent sets the event it is given, and ``work`` rolls back (it
    runs on, shielded, to settle); database failures become :class:`LedgerError`."""
    abandoned = asyncio.Event()
    done = asyncio.ensure_future(work(abandoned))
    try:
        return await _to_its_end(done, abandoned.set)
    except DatabaseError as exc:
        raise LedgerError(f"ledger {database.where}: cannot {what}: {exc}") from exc


async def _claimed(
    database: Database, claims: Sequence[Claim], fence: Fence | None, abandoned: asyncio.Event
) -> list[bool]:
    try:
        await database.begin()
        if fence is not None:
            lost = fence_lost(fence, await database.execute_fetchall(FENCE_READ, (fence[0],)))
            if lost is not None:
                raise lost
        held = []
        for claim in claims:
            made = True
            for sql, row in claim:
                if not await database.execute_fetchall(sql, row):
                    made = False
                    break
            held.append(made)
        if abandoned.is_set():
            raise _Abandoned
        await database.commit()
    except BaseException:
        await asyncio.shield(database.rollback())
        raise
    return held
