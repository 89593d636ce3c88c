"""The ledger: Fleetwarden's durable memory — one SQLite file (the embedded default) or a
PostgreSQL database shared by orchestrators — opened once, with one store per concern.

:class:`Ledger` opens the database (:mod:`fleet.ledger.database.engine`), brings its schema
up to date (:mod:`fleet.ledger.database.migrations`) and holds the stores, each of which owns
its tables and their record types; a part of Fleetwarden is handed the stores it uses, not
the ledger.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fleet.errors import LedgerError
from fleet.ledger.database.access import Access
from fleet.ledger.database.appender import Appender, SqliteAppender
from fleet.ledger.database.engine import Database, DatabaseError, SqliteDatabase
from fleet.ledger.database.location import LedgerLocation
from fleet.ledger.database.migrations import migrate, schema_version
from fleet.ledger.stores.code.changes import ChangesStore
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.operators.approvals import ApprovalsStore
from fleet.ledger.stores.operators.audit import AuditStore
from fleet.ledger.stores.operators.chat import ChatStore
from fleet.ledger.stores.operators.dashboard import DashboardStore
from fleet.ledger.stores.peers.messages import MessagesStore
from fleet.ledger.stores.peers.reviews import ReviewsStore
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.heartbeats import HeartbeatsStore
from fleet.ledger.stores.running.leases import LeasesStore
from fleet.ledger.stores.running.mcp_calls import McpCallsStore
from fleet.ledger.stores.running.refusals import RefusalsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.running.schedules import SchedulesStore
from fleet.ledger.stores.running.spawn_queue import SpawnQueueStore
from fleet.ledger.stores.spend.accounts import AccountsStore
from fleet.ledger.stores.spend.budgets import BudgetsStore
from fleet.ledger.stores.spend.metering import MeteringStore
from fleet.ledger.stores.spend.quotes import QuotesStore
from fleet.ledger.stores.spend.spend_asks import SpendAsksStore
from fleet.ledger.stores.work.actuals import ActualsStore
from fleet.ledger.stores.work.missions import MissionsStore
from fleet.ledger.stores.work.stages import StagesStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.private_files import private_dir, private_file
from fleet.timing.clock import Clock


class Ledger:
    """The opened ledger and its stores, one per concern."""

    def __init__(self, access: Access) -> None:
        self._access = access
        self.agents = AgentsStore(access)
        """Agents, their states and history, roster marks and token digests."""
        self.runs = RunsStore(access)
        """Runs and their reports."""
        self.heartbeats = HeartbeatsStore(access)
        self.leases = LeasesStore(access)
        """Which orchestrator may act."""
        self.lines = LinesStore(access)
        """Runs' branches and checkouts, and the change each run made."""
        self.changes = ChangesStore(access)
        """Changes (lines some run worked on): their runs, what those spent, how they ended."""
        self.forge = ForgeStore(access)
        """Forge runs, webhook deliveries, the forge audit and poll cursors."""
        self.approvals = ApprovalsStore(access)
        self.spend_asks = SpendAsksStore(access)
        """Asks at a run's cap (``cutoff: ask``): the raise offered, how each was settled."""
        self.budgets = BudgetsStore(access)
        """Budgets set by command, bursts, pacing steps and freezes."""
        self.metering = MeteringStore(access)
        """Usage rows and quota signals."""
        self.refusals = RefusalsStore(access)
        """What agents were refused on their way out."""
        self.quotes = QuotesStore(access)
        """Each run's quote: what it was expected to cost, and what it holds."""
        self.dashboard = DashboardStore(access)
        """The dashboard's sign-ins and the usage sums its pages read."""
        self.chat = ChatStore(access)
        """Threads, processed events, connector state, answers and confirmations."""
        self.audit = AuditStore(access)
        self.schedules = SchedulesStore(access)
        """Operator schedules."""
        self.tasks = TasksStore(access)
        """The register's tasks: their states, runs, waits, projections and what they cost."""
        self.missions = MissionsStore(access)
        """Missions, which group tasks and sub-missions."""
        self.stages = StagesStore(access)
        """The stages of missions made from pipelines, and their gates."""
        self.actuals = ActualsStore(access)
        """What tasks' runs really used, from the metered usage."""
        self.messages = MessagesStore(access)
        """Messages between agents, refused ones too, with their receipts."""
        self.reviews = ReviewsStore(access)
        """Rounds of review one agent was asked for on another's work, and their verdicts."""
        self.accounts = AccountsStore(access)
        """Accounts' assignments, marks and quota windows."""
        self.spawn_queue = SpawnQueueStore(access)
        """Spawns waiting for room to run."""
        self.mcp_calls = McpCallsStore(access)
        """Every call agents made through the MCP door."""

    @classmethod
    async def open(cls, path: Path, clock: Clock) -> Ledger:
        """Open (creating if needed) the SQLite ledger at ``path`` and bring its schema up to
        date."""
        try:
            if not path.parent.exists():
                private_dir(path.parent)
            # SQLite gives its -wal and -shm files the database file's mode: 0600 for all.
            private_file(path)
            for suffix in ("-wal", "-shm"):
                journal = path.with_name(path.name + suffix)
                if journal.exists():
                    journal.chmod(0o600)
        except OSError as exc:
            raise LedgerError(f"ledger {path}: cannot open: {exc}") from exc
        try:
            conn: Database = await SqliteDatabase.connect(path)
        except DatabaseError as exc:
            raise LedgerError(f"ledger {path}: cannot open: {exc}") from exc
        return await cls._opened(conn, lambda: SqliteAppender.open(path), clock)

    @classmethod
    async def connect(cls, location: LedgerLocation, clock: Clock) -> Ledger:
        """Open the ledger where ``location`` says: a SQLite file or a PostgreSQL database."""
        if location.url is None:
            return await cls.open(location.path, clock)
        # Imported here: an embedded (SQLite) ledger never loads the PostgreSQL driver.
        from fleet.ledger.database.postgres import PostgresAppender, PostgresDatabase

        url, password = location.url, location.password
        try:
            conn: Database = await PostgresDatabase.connect(url, password)
        except DatabaseError as exc:
            raise LedgerError(f"ledger {location}: cannot connect: {exc}") from exc
        return await cls._opened(conn, lambda: PostgresAppender.connect(url, password), clock)

    @classmethod
    async def _opened(
        cls, conn: Database, appender: Callable[[], Awaitable[Appender]], clock: Clock
    ) -> Ledger:
        try:
            await migrate(conn)
        except DatabaseError as exc:
            await conn.close()
            raise LedgerError(f"ledger {conn.where}: cannot open: {exc}") from exc
        except LedgerError as exc:
            await conn.close()
            raise LedgerError(f"ledger {conn.where}: {exc}") from exc
        except BaseException:
            await conn.close()
            raise
        try:
            second = await appender()
        except DatabaseError as exc:
            await conn.close()
            raise LedgerError(f"ledger {conn.where}: cannot open: {exc}") from exc
        except BaseException:
            await conn.close()
            raise
        return cls(Access(conn, second, clock))

    @property
    def where(self) -> str:
        """Where the ledger is, for messages: its file, or its URL without a password."""
        return self._access.where

    @property
    def engine(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._access.conn.engine

    async def close(self) -> None:
        """Close the connection; the ledger cannot be used afterwards."""
        access = self._access
        async with access.lock:
            try:
                await access.appender.close()
            finally:
                await access.conn.close()

    async def schema_version(self) -> int:
        """The schema version the database is at."""
        async with self._access.lock:
            return await schema_version(self._access.conn)

    async def pragmas(self) -> dict[str, Any]:
        """The connection settings that matter for safety, for diagnostics."""
        async with self._access.lock:
            return await self._access.conn.settings()

    def fence(self, name: str, holder: str, epoch: int) -> None:
        """From now on, write only while ``holder`` holds lease ``name`` at ``epoch``: every
        write transaction of every store checks it first, and raises :class:`LeaseLost` when
        it does not (see :mod:`fleet.ledger.stores.running.leases`)."""
        self._access.fence(name, holder, epoch)
