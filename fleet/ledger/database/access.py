"""The opened ledger every store shares: one connection, its appender, the clock, the lock
that keeps coroutines out of each other's transactions, the lease fence, and the hosts of
agents as last read or saved.

One connection (:mod:`fleet.ledger.database.engine`) in autocommit mode; each public write method of
a store is exactly one write transaction (or goes in one with others: claims and appends on
the appender's connection, under the same lock), exclusive across processes, and one
:class:`asyncio.Lock` keeps coroutines sharing the connection from interleaving inside each
other's transactions. Each store (:class:`Store`) is handed the :class:`Access` it works
through; nothing else passes between stores.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime

from fleet.errors import LedgerError
from fleet.ledger.database.appender import FENCE_READ, Appender, Claim, fence_lost
from fleet.ledger.database.engine import Database, DatabaseError, Row
from fleet.ledger.records.epoch import to_epoch
from fleet.timing.clock import Clock


async def check_fence(conn: Database, name: str, holder: str, epoch: int) -> None:
    """Inside a write transaction: raise :class:`LeaseLost` unless ``holder`` still has
    lease ``name`` at ``epoch``."""
    rows = await conn.execute_fetchall(FENCE_READ, (name,))
    lost = fence_lost((name, holder, epoch), rows)
    if lost is not None:
        raise lost


class Access:
    """One opened database and what every store's queries share."""

    def __init__(self, conn: Database, appender: Appender, clock: Clock) -> None:
        self.conn = conn
        self.appender = appender
        self.clock = clock
        self.lock = asyncio.Lock()
        self.hosts: dict[str, str] = {}  # agent → its host, as last read or saved
        self._fence: tuple[str, str, int] | None = None  # lease name, holder, epoch

    @property
    def where(self) -> str:
        """Where the ledger is, for messages: its file, or its URL without a password."""
        return self.conn.where

    def fence(self, name: str, holder: str, epoch: int) -> None:
        """From now on, write only while ``holder`` holds lease ``name`` at ``epoch``: every
        write transaction checks it first, and raises :class:`LeaseLost` when it does not
        (see :mod:`fleet.ledger.stores.running.leases`)."""
        self._fence = (name, holder, epoch)

    def epoch(self, at: datetime | None) -> float:
        """``at`` (now when none) as epoch seconds."""
        return to_epoch(self.clock.now() if at is None else at)

    @asynccontextmanager
    async def transaction(self, what: str, *, fenced: bool = True) -> AsyncIterator[Database]:
        """One write transaction, checked against the fence (:meth:`fence`) when ``fenced``;
        database failures become :class:`LedgerError`."""
        async with self.lock:
            try:
                await self.conn.begin()
                if fenced and self._fence is not None:
                    await check_fence(self.conn, *self._fence)
                yield self.conn
                await self.conn.commit()
            except BaseException as exc:
                # Shielded, so a second cancel cannot skip it (see SqliteDatabase.rollback).
                with contextlib.suppress(DatabaseError):
                    await asyncio.shield(self.conn.rollback())
                if isinstance(exc, DatabaseError):
                    raise LedgerError(f"ledger {self.where}: cannot {what}: {exc}") from exc
                raise

    async def claim(self, what: str, claims: Sequence[Claim]) -> list[bool]:
        """Make ``claims`` in one write transaction of the appender, checked against the
        fence: whether each holds (:meth:`Appender.claim`)."""
        async with self.lock:
            return await self.appender.claim(what, claims, self._fence)

    async def write(self, what: str, sql: str, params: Sequence[object]) -> list[Row]:
        """One write statement, atomic on its own, and the rows it returns (``RETURNING``):
        sent alone in autocommit, one trip to the database instead of three (``BEGIN``, it,
        ``COMMIT``); in a fenced transaction as every other write while a fence is set.
        Only for a statement whose own ``WHERE`` decides it (``… WHERE state = 'open'``):
        nothing read before it is held still."""
        if self._fence is not None:
            async with self.transaction(what) as conn:
                return await conn.execute_fetchall(sql, params)
        async with self.lock:
            try:
                return await self.conn.execute_fetchall(sql, params)
            except DatabaseError as exc:
                raise LedgerError(f"ledger {self.where}: cannot {what}: {exc}") from exc

    async def all(self, sql: str, params: Sequence[object]) -> list[Row]:
        """The rows ``sql`` reads."""
        async with self.lock:
            try:
                return await self.conn.execute_fetchall(sql, params)
            except DatabaseError as exc:
                raise LedgerError(f"ledger {self.where}: cannot read: {exc}") from exc


class Store:
    """One concern's queries, run through the shared :class:`Access`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    @property
    def _clock(self) -> Clock:
        return self._access.clock

    @property
    def _lock(self) -> asyncio.Lock:
        return self._access.lock

    @property
    def _appender(self) -> Appender:
        return self._access.appender

    @property
    def _hosts(self) -> dict[str, str]:
        return self._access.hosts

    def _transaction(
        self, what: str, *, fenced: bool = True
    ) -> AbstractAsyncContextManager[Database]:
        return self._access.transaction(what, fenced=fenced)

    async def _all(self, sql: str, params: Sequence[object]) -> list[Row]:
        return await self._access.all(sql, params)

    async def _write(self, what: str, sql: str, params: Sequence[object]) -> list[Row]:
        return await self._access.write(what, sql, params)

    async def _one(self, sql: str, params: Sequence[object]) -> Row | None:
        rows = await self._access.all(sql, params)
        return rows[0] if rows else None

    def _epoch(self, at: datetime | None) -> float:
        return self._access.epoch(at)
