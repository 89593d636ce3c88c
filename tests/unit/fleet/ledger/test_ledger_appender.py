"""The appender: a whole batch in one transaction on its own connection, all or nothing —
a refused row, or a caller cancelled before the commit, leaves nothing written and the
connection ready for the next batch."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from fleet.errors import LedgerError
from fleet.ledger.database.appender import AT_ONCE_ROWS, CHECKPOINT_EVERY
from fleet.ledger.database.appender import SqliteAppender as Appender

INSERT = "INSERT INTO t (n) VALUES (?)"
T = TypeVar("T")


@pytest.fixture
async def appender(tmp_path: Path) -> AsyncIterator[Appender]:
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (n INTEGER NOT NULL CHECK (n >= 0))")
    opened = await Appender.open(path)
    try:
        yield opened
    finally:
        await opened.close()


def rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [n for (n,) in conn.execute("SELECT n FROM t ORDER BY rowid")]


async def test_a_batch_of_statements_is_written_together(appender: Appender) -> None:
    await appender.append("add", [(INSERT, [(1,), (2,)]), (INSERT, []), (INSERT, [(3,)])])
    assert rows(appender._path) == [1, 2, 3]


async def test_a_refused_row_leaves_nothing_of_its_batch(appender: Appender) -> None:
    with pytest.raises(LedgerError, match=r"cannot add three.*CHECK"):
        await appender.append("add three", [(INSERT, [(1,), (2,)]), (INSERT, [(-3,)])])
    assert rows(appender._path) == []
    await appender.append("add one", [(INSERT, [(4,)])])  # not left mid-transaction
    assert rows(appender._path) == [4]


async def test_a_caller_cancelled_before_the_commit_has_its_batch_rolled_back(
    appender: Appender,
) -> None:
    # Another writer holds the file: the batch waits in BEGIN IMMEDIATE on the thread.
    holder = sqlite3.connect(appender._path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    task = asyncio.create_task(appender.append("add", [(INSERT, [(1,)])]))
    await asyncio.sleep(0.1)
    task.cancel()
    release = threading.Timer(0.1, holder.execute, ("COMMIT",))
    release.start()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.join()
    holder.close()
    assert rows(appender._path) == []
    await appender.append("add", [(INSERT, [(2,)])])
    assert rows(appender._path) == [2]


async def test_a_batch_is_written_on_the_event_loop_while_the_file_is_free(
    appender: Appender,
) -> None:
    """The file free, a small batch needs no trip to the appender's thread (kept busy here);
    a backlog larger than :data:`AT_ONCE_ROWS` goes there, so the loop is never held long.
    (The first write after opening goes there too: it starts the WAL, a sync.)"""
    await appender.append("start", [(INSERT, [])])
    busy = threading.Event()
    occupied = asyncio.get_running_loop().run_in_executor(appender._thread, busy.wait)
    try:
        await appender.append("add", [(INSERT, [(1,), (2,)])])
        assert rows(appender._path) == [1, 2]
        backlog = [(n,) for n in range(AT_ONCE_ROWS + 1)]
        task = asyncio.create_task(appender.append("add many", [(INSERT, backlog)]))
        await asyncio.sleep(0.05)
        assert not task.done() and rows(appender._path) == [1, 2]
    finally:
        busy.set()
        await occupied
    await task
    assert rows(appender._path) == [1, 2, *range(AT_ONCE_ROWS + 1)]


CLAIM = "INSERT INTO k (key) VALUES (?) ON CONFLICT DO NOTHING RETURNING key"


def keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [key for (key,) in conn.execute("SELECT key FROM k ORDER BY rowid")]


async def test_claims_hold_once_in_order_and_stop_at_a_key_taken(appender: Appender) -> None:
    """Each claim holds when all its rows went in; the second claim of a key does not, and
    a claim stops at its first key taken (its later rows are not inserted)."""
    with sqlite3.connect(appender._path) as conn:
        conn.execute("CREATE TABLE k (key TEXT PRIMARY KEY)")
    held = await appender.claim(
        "claim",
        [
            [(CLAIM, ("a",))],
            [(CLAIM, ("a",))],
            [(CLAIM, ("a",)), (CLAIM, ("b",))],
            [(CLAIM, ("c",))],
        ],
    )
    assert held == [True, False, False, True]
    assert keys(appender._path) == ["a", "c"]


async def test_a_claim_waits_on_the_thread_while_another_writer_holds_the_file(
    appender: Appender,
) -> None:
    """Another writer has the file: the claim does not wait on the event loop (which goes
    on), but on the thread, and is made once the file is free."""
    with sqlite3.connect(appender._path) as conn:
        conn.execute("CREATE TABLE k (key TEXT PRIMARY KEY)")
    holder = sqlite3.connect(appender._path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    task = asyncio.create_task(appender.claim("claim", [[(CLAIM, ("a",))]]))
    await asyncio.sleep(0.1)
    assert not task.done() and keys(appender._path) == []
    holder.execute("COMMIT")
    holder.close()
    assert await task == [True]
    assert keys(appender._path) == ["a"]


async def test_a_refused_claim_leaves_nothing_of_its_batch(appender: Appender) -> None:
    """A row refused (a CHECK) fails every claim of the batch, and writes none of them."""
    with sqlite3.connect(appender._path) as conn:
        conn.execute("CREATE TABLE k (key TEXT PRIMARY KEY CHECK (key != 'bad'))")
    with pytest.raises(LedgerError, match=r"cannot claim two.*CHECK"):
        await appender.claim("claim two", [[(CLAIM, ("a",))], [(CLAIM, ("bad",))]])
    assert keys(appender._path) == []
    assert await appender.claim("claim", [[(CLAIM, ("a",))]]) == [True]


async def occupied(appender: Appender) -> tuple[threading.Event, asyncio.Future[bool]]:
    """The appender's thread kept busy until the event is set."""
    busy = threading.Event()
    return busy, asyncio.get_running_loop().run_in_executor(appender._thread, busy.wait)


async def on_the_loop(write: Awaitable[object]) -> None:
    """``write`` made while the thread is busy: only the event loop can have made it."""
    async with asyncio.timeout(5.0):
        await write


async def on_the_thread(appender: Appender, write: Awaitable[T]) -> T:
    """``write`` waits while the thread is busy, and is made once it is free."""
    busy, thread = await occupied(appender)
    task = asyncio.ensure_future(write)
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done()
    finally:
        busy.set()
        await thread
    return await task


@pytest.mark.parametrize("write", ["append", "claim"])
async def test_the_wal_starts_over_on_the_thread_not_the_event_loop(
    appender: Appender, write: str
) -> None:
    """The first write after opening, and the one after a checkpoint fell due, start the
    WAL over (SQLite syncs its header): they go to the thread, which checkpoints first; the
    write that makes the checkpoint due is made on the loop and awaits nothing after its
    commit (a cancel there would have its caller write it again)."""
    with sqlite3.connect(appender._path) as conn:
        conn.execute("CREATE TABLE k (key TEXT PRIMARY KEY)")
    checkpoints: list[int] = []
    checkpoint = appender._checkpoint

    def counted(abandoned: threading.Event) -> None:
        checkpoints.append(len(rows(appender._path)) + len(keys(appender._path)))
        checkpoint(abandoned)

    appender._checkpoint = counted  # type: ignore[method-assign]

    def make(n: int) -> Awaitable[object]:
        if write == "append":
            return appender.append("add", [(INSERT, [(n,)])])
        return appender.claim("claim", [[(CLAIM, (str(n),))]])

    await on_the_thread(appender, make(0))  # the first after opening
    assert checkpoints == [0]
    appender._claimed = CHECKPOINT_EVERY - 1
    busy, thread = await occupied(appender)
    try:
        await on_the_loop(make(1))  # makes the checkpoint due, does not wait for it
    finally:
        busy.set()
        await thread
    assert checkpoints == [0]
    await on_the_thread(appender, make(2))
    assert checkpoints == [0, 2]  # before the write, in its trip
    busy, thread = await occupied(appender)
    try:
        await on_the_loop(make(3))
    finally:
        busy.set()
        await thread
    assert sorted(rows(appender._path) + [int(k) for k in keys(appender._path)]) == [0, 1, 2, 3]
