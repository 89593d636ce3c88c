"""The ledger's seam to its database engine: SQLite (the embedded default) or PostgreSQL.

Every query in :mod:`fleet.ledger` is written once, in the SQL both engines speak, with ``?``
placeholders; what differs between them lives behind :class:`Database` — how a write
transaction excludes other writers, how placeholders and types are spelled, how the schema
is inspected — in :class:`SqliteDatabase` here and in :mod:`fleet.ledger.database.postgres`.

A write transaction is exclusive across every process that shares the ledger: SQLite's
``BEGIN IMMEDIATE`` takes the file's write lock; PostgreSQL's takes one transaction-scoped
advisory lock. So each read-modify-write the ledger does (an event claimed once, a spawn
de-duplicated, a reservation counted) is as serial with two orchestrators as with one.

Errors::

    DatabaseError          any failure the engine reports
    └── IntegrityError     a constraint refused the write (a duplicate key, a CHECK)
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

__all__ = [
    "NO_LIMIT",
    "Cursor",
    "Database",
    "DatabaseError",
    "IntegrityError",
    "Row",
    "SqliteDatabase",
    "insert_id",
    "replace_into",
]


NO_LIMIT = 2**62
"""A ``LIMIT ?`` that limits nothing: SQLite's ``-1`` is an error in PostgreSQL, whose
``NULL`` is one in SQLite."""


class DatabaseError(Exception):
    """The database refused or failed a statement; the message is the engine's."""


class IntegrityError(DatabaseError):
    """A constraint refused the write: a duplicate key, a failed CHECK or reference."""


class Row(Protocol):
    """One result row, read by position or by column name (as :class:`sqlite3.Row`)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...


class Cursor(Protocol):
    """What a statement run by :meth:`Database.execute` reports."""

    @property
    def rowcount(self) -> int: ...


class Database(Protocol):
    """One connection to the ledger's database, used by one task at a time (the ledger's
    lock sees to it)."""

    engine: str
    """``sqlite`` or ``postgresql``."""

    where: str
    """Where the database is, for messages: a file, or a URL without its password."""

    async def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor: ...

    async def execute_fetchall(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...

    async def begin(self) -> None:
        """Start a write transaction that excludes every other writer until it ends."""

    async def commit(self) -> None: ...

    async def rollback(self) -> None:
        """End the transaction, if any, undoing it; harmless outside one."""

    @property
    def in_transaction(self) -> bool: ...

    async def table_names(self) -> list[str]:
        """The tables of the ledger's schema (never the engine's own)."""

    async def settings(self) -> dict[str, Any]:
        """The connection settings that matter for safety, for diagnostics."""

    async def close(self) -> None: ...


async def insert_id(conn: Database, sql: str, params: Sequence[object]) -> int:
    """Run ``sql``, an ``INSERT`` into a table with an ``id`` key, and return the new id."""
    rows = await conn.execute_fetchall(sql + " RETURNING id", params)
    if not rows:
        raise DatabaseError("the database reported no id for an insert")
    return int(rows[0][0])


# -- SQLite ---------------------------------------------------------------------------------

_SQLITE_PRAGMAS = (
    # busy_timeout first so that switching to WAL waits for other writers instead of failing.
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
)


def sqlite_error(exc: sqlite3.Error) -> DatabaseError:
    """The engine-neutral error for ``exc``."""
    kind = IntegrityError if isinstance(exc, sqlite3.IntegrityError) else DatabaseError
    error = kind(str(exc))
    error.__cause__ = exc
    return error


class SqliteDatabase:
    """The ledger in one SQLite file, through aiosqlite, in autocommit mode."""

    engine = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.where = str(path)

    @classmethod
    async def connect(cls, path: Path) -> SqliteDatabase:
        """Open ``path`` (created if missing) with the ledger's pragmas."""
        conn = aiosqlite.connect(path, isolation_level=None)
        opening = asyncio.ensure_future(_opened(conn))
        try:
            await asyncio.shield(opening)
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from exc
        except asyncio.CancelledError:
            # Its thread runs on (a Ctrl-C as Fleetwarden starts): let it open and close, so
            # it never answers a loop that has gone, which would print a traceback.
            with contextlib.suppress(Exception):
                await opening
                await conn.close()
            raise
        try:
            conn.row_factory = aiosqlite.Row
            for pragma in _SQLITE_PRAGMAS:
                await conn.execute(pragma)
        except sqlite3.Error as exc:
            await conn.close()
            raise sqlite_error(exc) from exc
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path)

    async def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        try:
            return await self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from exc

    async def execute_fetchall(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        try:
            return list(await self._conn.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        try:
            await self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from exc

    async def begin(self) -> None:
        await self.execute("BEGIN IMMEDIATE")

    async def commit(self) -> None:
        await self.execute("COMMIT")

    async def rollback(self) -> None:
        # Always sent, even when no transaction looks open: a task cancelled while its BEGIN
        # waited on aiosqlite's thread has not seen the BEGIN run yet, and it will run.
        # Statements run in order on that thread, so this ROLLBACK follows it.
        with contextlib.suppress(sqlite3.Error):  # no transaction was open after all
            await self._conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    async def table_names(self) -> list[str]:
        rows = await self.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return sorted(str(row[0]) for row in rows)

    async def settings(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous"):
            rows = await self.execute_fetchall(f"PRAGMA {name}")
            found[name] = rows[0][0] if rows else None
        return found

    async def close(self) -> None:
        await self._conn.close()


def replace_into(
    table: str, key: Sequence[str], columns: Sequence[str], reset: Mapping[str, str] = {}
) -> str:
    """An ``INSERT`` of ``columns`` that replaces the row with the same ``key``, as SQLite's
    ``INSERT OR REPLACE`` does, in SQL both engines speak: the other columns are set anew,
    and those in ``reset`` (the ones the insert leaves out) go back to their defaults, given
    as SQL (``NULL``, ``0``) since SQLite has no ``SET x = DEFAULT``."""
    marks = ", ".join("?" * len(columns))
    updates = [f"{name} = excluded.{name}" for name in columns if name not in key]
    updates += [f"{name} = {default}" for name, default in reset.items()]
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(updates)}"
    )


async def _opened(conn: aiosqlite.Connection) -> aiosqlite.Connection:
    """``conn`` once its thread has connected (awaiting it connects)."""
    return await conn
