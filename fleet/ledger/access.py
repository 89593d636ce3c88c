"""What the ledger's query mixins need of :class:`~fleet.ledger.store.Ledger`: its clock, a
transaction, a query for rows and for one row, a time as epoch seconds, and for the hot
path's batches its lock and :class:`~fleet.ledger.appender.Appender`. Each mixin
types its ``self`` as :class:`Store`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from fleet.clock import Clock
from fleet.ledger.appender import Appender
from fleet.ledger.engine import Database, Row


class Store(Protocol):
    _clock: Clock
    _lock: asyncio.Lock
    _appender: Appender
    _hosts: dict[str, str]  # agent → its host, as last read or saved (usage rows carry it)

    def _transaction(
        self, what: str, *, fenced: bool = True
    ) -> AbstractAsyncContextManager[Database]: ...

    async def _all(self, sql: str, params: Sequence[object]) -> list[Row]: ...

    async def _one(self, sql: str, params: Sequence[object]) -> Row | None: ...

    def _epoch(self, at: datetime | None) -> float: ...
