"""The appender: a whole batch in one transaction on its own connection, all or nothing —
a refused row, or a caller cancelled before the commit, leaves nothing written and the
connection ready for the next batch."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.errors import LedgerError
from fleet.ledger.database.appender import AT_ONCE_ROWS
from fleet.ledger.database.appender import SqliteAppender as Appender

INSERT = "INSERT INTO t (n) VALUES (?)"


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
    a backlog larger than :data:`AT_ONCE_ROWS` goes there, so the loop is never held long."""
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
