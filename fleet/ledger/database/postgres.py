"""The ledger on PostgreSQL, through psycopg 3: the :class:`~fleet.ledger.database.engine.Database`
for a ledger shared by several orchestrators (an active one and its standby) or hosts.

The ledger's SQL is written once, for both engines (:mod:`fleet.ledger.database.engine`); what
PostgreSQL spells otherwise is translated by :mod:`fleet.ledger.database.pg_sql`.

Parameters are bound on the client (``AsyncClientCursor``) as SQLite binds them: a value's
type comes from where it stands, so ``? IS NULL`` needs no cast. Python's ``bool`` goes in
as 0/1, as SQLite stores it; ``numeric`` results (``sum`` of integers) come back as ``int``
or ``float``, never :class:`~decimal.Decimal`; a NUL character, which PostgreSQL's text
cannot hold, is stored as U+FFFD.

A write transaction takes one transaction-scoped advisory lock, so writers exclude each
other across processes as ``BEGIN IMMEDIATE`` does in SQLite. A lost connection (the server
restarted, the network cut) fails the statement with :class:`~fleet.ledger.database.engine.
DatabaseError`; the next statement reconnects, no sooner than a backoff that grows to
:data:`RECONNECT_CAP` while the server stays away.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper, Loader
from psycopg.pq import TransactionStatus
from psycopg.types.string import StrDumperUnknown

from fleet.ledger.database.appender import Claim, Fence, Statement, claim_on, settled
from fleet.ledger.database.engine import Cursor, DatabaseError, IntegrityError, Row
from fleet.ledger.database.pg_sql import translate

log = logging.getLogger(__name__)

__all__ = ["PostgresAppender", "PostgresDatabase", "redact_url"]

ADVISORY_KEY: Final = 0x466C656574  # "Fleet": the one lock every write transaction takes
RECONNECT_FIRST: Final = 0.5
RECONNECT_CAP: Final = 30.0
CONNECT_TIMEOUT: Final = 10


def redact_url(url: str) -> str:
    """``url`` without a password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


# -- adaptation -----------------------------------------------------------------------------


class _Row:
    """A result row read by position or by column name, as :class:`sqlite3.Row` is."""

    __slots__ = ("_names", "_values")

    def __init__(self, values: tuple[Any, ...], names: dict[str, int]) -> None:
        self._values = values
        self._names = names

    def __getitem__(self, key: int | str, /) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._names[key]]
            except KeyError:
                raise IndexError(f"no column named {key!r}") from None
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._names)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values, strict=False))!r})"


def _rows(cursor: psycopg.AsyncCursor[Any]) -> Callable[[Sequence[Any]], _Row]:
    names: dict[str, int] = {}
    for index, column in enumerate(cursor.description or ()):
        names.setdefault(column.name, index)  # the first of a repeated name, as sqlite3.Row
    return lambda values: _Row(tuple(values), names)


class _BoolAsInteger(Dumper):
    """A Python ``bool`` as the 0/1 SQLite stores, into the ledger's integer columns."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"

    def quote(self, obj: bool) -> bytes:
        return self.dump(obj)


class _Text(StrDumperUnknown):
    """Text as given, but a NUL (which PostgreSQL's text cannot hold) as U+FFFD."""

    def dump(self, obj: str) -> bytes:
        return obj.replace("\x00", "\ufffd").encode(self._encoding)


class _Number(Loader):
    """``numeric`` (what ``sum`` of integers gives) as ``int``, or ``float`` if fractional."""

    def load(self, data: Any) -> int | float:
        text = bytes(data)
        if text.isdigit() or (text[:1] == b"-" and text[1:].isdigit()):
            return int(text)
        return float(text)


def _adapt(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.adapters.register_dumper(bool, _BoolAsInteger)
    conn.adapters.register_dumper(str, _Text)
    conn.adapters.register_loader("numeric", _Number)


def _error(exc: psycopg.Error) -> DatabaseError:
    kind = IntegrityError if isinstance(exc, pg_errors.IntegrityError) else DatabaseError
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    error = kind(message)
    error.__cause__ = exc
    return error


# -- the connection -------------------------------------------------------------------------


class _Reconnect:
    """When the next connection attempt may be made: capped, jittered backoff."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._delay = 0.0
        self._not_before = 0.0

    def wait(self) -> float:
        """Seconds until an attempt is allowed (0: now)."""
        return max(0.0, self._not_before - self._clock())

    def failed(self) -> None:
        self._delay = min(RECONNECT_CAP, max(RECONNECT_FIRST, self._delay * 2))
        self._not_before = self._clock() + self._delay * random.uniform(0.8, 1.2)

    def succeeded(self) -> None:
        self._delay = 0.0
        self._not_before = 0.0


class PostgresDatabase:
    """The ledger in a PostgreSQL database, one connection, in autocommit mode between the
    ledger's own ``BEGIN``/``COMMIT``."""

    engine = "postgresql"

    def __init__(self, url: str, password: str | None) -> None:
        self._url = url
        self._password = password
        self.where = redact_url(url)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._reconnect = _Reconnect()

    @classmethod
    async def connect(cls, url: str, password: str | None = None) -> PostgresDatabase:
        """Connect to ``url`` (``password``, when given, over any in libpq's own places)."""
        database = cls(url, password)
        await database._connection()
        return database

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        conn = self._conn
        if conn is not None and not conn.broken and not conn.closed:
            return conn
        if conn is not None:
            self._conn = None
            await conn.close()
        wait = self._reconnect.wait()
        if wait > 0:
            raise DatabaseError(f"PostgreSQL is unreachable; trying again in {wait:.0f} s")
        extra: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT}
        if self._password is not None:
            extra["password"] = self._password
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._url,
                autocommit=True,
                cursor_factory=psycopg.AsyncClientCursor,
                row_factory=_rows,
                **extra,
            )
        except psycopg.Error as exc:
            self._reconnect.failed()
            raise _error(exc) from exc
        _adapt(conn)
        self._reconnect.succeeded()
        self._conn = conn
        return conn

    async def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        conn = await self._connection()
        cursor = conn.cursor()
        try:
            await cursor.execute(translate(sql, bool(params)), params or None)
        except psycopg.Error as exc:
            raise _error(exc) from exc
        return cursor

    async def execute_fetchall(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        conn = await self._connection()
        cursor = conn.cursor()
        try:
            await cursor.execute(translate(sql, bool(params)), params or None)
            if cursor.description is None:
                return []
            rows: list[Row] = await cursor.fetchall()
            return rows
        except psycopg.Error as exc:
            raise _error(exc) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        batch = list(rows)
        if not batch:
            return
        conn = await self._connection()
        try:
            await conn.cursor().executemany(translate(sql), batch)
        except psycopg.Error as exc:
            raise _error(exc) from exc

    async def begin(self) -> None:
        await self.execute("BEGIN")
        await self.execute(f"SELECT pg_advisory_xact_lock({ADVISORY_KEY})")

    async def begin_shared(self) -> None:
        """Start a transaction that takes no lock: for appends that read nothing."""
        await self.execute("BEGIN")

    async def commit(self) -> None:
        await self.execute("COMMIT")

    async def rollback(self) -> None:
        conn = self._conn
        if conn is None or conn.broken or conn.closed:
            return  # the server rolls back a transaction whose connection is gone
        if conn.info.transaction_status == TransactionStatus.IDLE:
            return
        try:
            await conn.execute("ROLLBACK")
        except psycopg.Error:
            log.debug("ROLLBACK failed on %s", self.where, exc_info=True)

    @property
    def in_transaction(self) -> bool:
        conn = self._conn
        if conn is None or conn.closed:
            return False
        return conn.info.transaction_status != TransactionStatus.IDLE

    async def table_names(self) -> list[str]:
        rows = await self.execute_fetchall(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        return sorted(str(row[0]) for row in rows)

    async def settings(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in ("server_version", "transaction_isolation", "synchronous_commit"):
            rows = await self.execute_fetchall(f"SHOW {name}")
            found[name] = rows[0][0] if rows else None
        return found

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


class PostgresAppender:
    """Batches of inserts on a connection of their own, each batch one transaction sent in
    one pipeline (``BEGIN``, the rows, ``COMMIT``: one round trip). Appends read nothing and
    take no lock, so several orchestrators' batches go in side by side. Claims take the
    lock and check the fence, as every write transaction does (:func:`claim_on`)."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    @classmethod
    async def connect(cls, url: str, password: str | None = None) -> PostgresAppender:
        return cls(await PostgresDatabase.connect(url, password))

    async def append(self, what: str, statements: Sequence[Statement]) -> None:
        """Run ``statements`` in one transaction; a caller cancelled before the ``COMMIT``
        is sent has its batch rolled back (the batch runs on, shielded, to settle)."""
        await settled(self._database, what, lambda abandoned: self._write(statements, abandoned))

    async def claim(
        self, what: str, claims: Sequence[Claim], fence: Fence | None = None
    ) -> list[bool]:
        return await claim_on(self._database, what, claims, fence)

    async def _write(self, statements: Sequence[Statement], abandoned: asyncio.Event) -> None:
        conn = await self._database._connection()
        # One multi-row INSERT per table: a batch of one table is then a single statement,
        # atomic in autocommit, with no BEGIN and COMMIT to send and parse.
        inserts = [_multirow(sql, rows) for sql, rows in statements if rows]
        try:
            if len(inserts) == 1:
                await conn.cursor().execute(translate(inserts[0][0]), inserts[0][1])
                return
            async with conn.pipeline():
                cursor = conn.cursor()
                await cursor.execute("BEGIN")
                for sql, params in inserts:
                    await cursor.execute(translate(sql), params)
                if abandoned.is_set():
                    raise _Abandoned
                await cursor.execute("COMMIT")
        except psycopg.Error as exc:
            await self._database.rollback()
            raise _error(exc) from exc
        except BaseException:
            await self._database.rollback()
            raise

    async def close(self) -> None:
        await self._database.close()


_VALUES = re.compile(r"VALUES (\(\?(?:, \?)*\))$")


def _multirow(sql: str, rows: Sequence[Sequence[object]]) -> tuple[str, list[object]]:
    """``sql``, an ``INSERT … VALUES (?, …)`` of one row, made to insert every row of
    ``rows`` in one statement, with their parameters in one list."""
    match = _VALUES.search(sql)
    if match is None:
        raise ValueError(f"not a one-row INSERT: {sql[:60]!r}")
    values = ", ".join([match[1]] * len(rows))
    return sql[: match.start(1)] + values, [value for row in rows for value in row]


class _Abandoned(Exception):
    """The caller was cancelled before the batch committed: it is rolled back."""
