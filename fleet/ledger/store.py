"""The ledger: Fleetwarden's durable memory — one SQLite file (the embedded default) or a
PostgreSQL database shared by orchestrators — and every query against it.

One connection (:mod:`fleet.ledger.engine`) in autocommit mode; each public write method is
exactly one write transaction, exclusive across processes, and an :class:`asyncio.Lock`
keeps coroutines sharing the connection from interleaving inside each other's transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from fleet.clock import Clock
from fleet.errors import LedgerError, UnknownAgent
from fleet.ledger.accounts import AccountsLedger
from fleet.ledger.answers import AnswersLedger
from fleet.ledger.appender import Appender, SqliteAppender
from fleet.ledger.approvals import ApprovalsLedger
from fleet.ledger.audit import AuditLedger
from fleet.ledger.branches import BranchesLedger
from fleet.ledger.budgets import BudgetsLedger
from fleet.ledger.chat import ChatLedger
from fleet.ledger.confirmations import ConfirmationsLedger
from fleet.ledger.dashboard import DashboardLedger
from fleet.ledger.engine import Database, DatabaseError, Row, SqliteDatabase, insert_id
from fleet.ledger.forge import ForgeLedger
from fleet.ledger.freezes import FreezesLedger
from fleet.ledger.heartbeats import BeatGroup, HeartbeatsLedger
from fleet.ledger.leases import LeasesLedger, check_fence
from fleet.ledger.location import LedgerLocation
from fleet.ledger.metering import MeteringLedger
from fleet.ledger.migrations import migrate, schema_version
from fleet.ledger.operator_schedules import SchedulesLedger
from fleet.ledger.refusals import RefusalsLedger
from fleet.ledger.roster_marks import RosterMarksLedger
from fleet.ledger.rows import (
    AgentEvent,
    AgentOrigin,
    AgentRecord,
    Parsed,
    RunRecord,
    spec_extra_json,
    to_epoch,
)
from fleet.ledger.run_reports import RunReportsLedger
from fleet.ledger.spawn_queue import SpawnQueueLedger
from fleet.ledger.token_digests import TokenDigestsLedger
from fleet.model import AgentSpec, AgentState, DesiredState, ExitInfo, RunHandle
from fleet.private_files import private_dir, private_file

log = logging.getLogger(__name__)


class Ledger(
    AuditLedger,
    TokenDigestsLedger,
    HeartbeatsLedger,
    ChatLedger,
    AnswersLedger,
    MeteringLedger,
    SchedulesLedger,
    BudgetsLedger,
    AccountsLedger,
    FreezesLedger,
    ConfirmationsLedger,
    SpawnQueueLedger,
    RunReportsLedger,
    RosterMarksLedger,
    RefusalsLedger,
    ApprovalsLedger,
    LeasesLedger,
    DashboardLedger,
    BranchesLedger,
    ForgeLedger,
):
    """Agents, their state history and runs, and the audit trail; heartbeats come from
    :class:`~fleet.ledger.heartbeats.HeartbeatsLedger`, the chat
    bookkeeping (threads, processed events, connector state) comes from
    :class:`~fleet.ledger.chat.ChatLedger`, metering (usage and quota signals) from
    :class:`~fleet.ledger.metering.MeteringLedger`, operator schedules from
    :class:`~fleet.ledger.operator_schedules.SchedulesLedger`, budgets set by command, bursts
    and pacing steps from :class:`~fleet.ledger.budgets.BudgetsLedger`, accounts'
    assignments, marks and quota windows from :class:`~fleet.ledger.accounts.AccountsLedger`,
    agents frozen by a budget's cutoff or by hand from
    :class:`~fleet.ledger.freezes.FreezesLedger`, commands waiting for a confirming reply
    from :class:`~fleet.ledger.confirmations.ConfirmationsLedger`,
    RunReportsLedger,
    RosterMarksLedger, egress refusals from :class:`~fleet.ledger.refusals.RefusalsLedger`.
    """

    def __init__(self, conn: Database, appender: Appender, clock: Clock) -> None:
        self._conn = conn
        self._appender = appender
        self._clock = clock
        self._lock = asyncio.Lock()
        self._hosts: dict[str, str] = {}
        self._beats = BeatGroup()
        self._agent_rows = Parsed(AgentRecord.from_row)  # by agent name
        self._last_runs = Parsed(RunRecord.from_row)  # by agent name
        self._fence: tuple[str, str, int] | None = None  # lease name, holder, epoch

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
        from fleet.ledger.postgres import PostgresAppender, PostgresDatabase

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
        return cls(conn, second, clock)

    @property
    def where(self) -> str:
        """Where the ledger is, for messages: its file, or its URL without a password."""
        return self._conn.where

    @property
    def engine(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._conn.engine

    async def close(self) -> None:
        """Close the connection; the ledger cannot be used afterwards."""
        async with self._lock:
            try:
                await self._appender.close()
            finally:
                await self._conn.close()

    async def schema_version(self) -> int:
        """The schema version the database is at."""
        async with self._lock:
            return await schema_version(self._conn)

    async def pragmas(self) -> dict[str, Any]:
        """The connection settings that matter for safety, for diagnostics."""
        async with self._lock:
            return await self._conn.settings()

    # -- agents ---------------------------------------------------------------------------

    async def upsert_agent(
        self, spec: AgentSpec, desired: DesiredState, *, origin: AgentOrigin | None = None
    ) -> AgentRecord:
        """Save ``spec`` and ``desired``; a new agent starts ``pending``, an existing one keeps
        its state. With ``origin`` (a spawn: where its settings came from), a removal from the
        roster is cleared; so is a ``forget``, with the restart count of the forgotten run."""
        now = to_epoch(self._clock.now())
        fields = (
            spec.runtime,
            spec.backend,
            spec.model,
            spec.prompt,
            None if spec.workdir is None else str(spec.workdir),
            json.dumps(dict(spec.env), sort_keys=True),
            json.dumps(list(spec.secret_env)),
            spec_extra_json(spec),
            desired.value,
            spec.host,
        )
        async with self._transaction(f"save agent {spec.name}") as conn:
            cursor = await conn.execute(
                "UPDATE agents SET runtime = ?, backend = ?, model = ?, prompt = ?, workdir = ?,"
                " env_json = ?, secret_env_json = ?, spec_extra_json = ?, desired_state = ?,"
                " host = ?,"
                " updated_at = ?, origin = coalesce(?, origin),"
                " removed_at = CASE WHEN ? IS NULL THEN removed_at END,"
                # Every right-hand side sees the row as it was: forgotten_at is still set here.
                " restarts_in_a_row = CASE WHEN forgotten_at IS NULL THEN restarts_in_a_row"
                " ELSE 0 END,"
                " last_restart_at = CASE WHEN forgotten_at IS NULL THEN last_restart_at END,"
                " next_restart_at = CASE WHEN forgotten_at IS NULL THEN next_restart_at END,"
                " forgotten_at = NULL"
                " WHERE name = ?",
                (*fields, now, origin, origin, spec.name),
            )
            if cursor.rowcount == 0:
                await conn.execute(
                    "INSERT INTO agents (runtime, backend, model, prompt, workdir, env_json,"
                    " secret_env_json, spec_extra_json, desired_state, host, name, state,"
                    " state_reason, state_changed_at, created_at, updated_at, origin)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        *fields,
                        spec.name,
                        AgentState.PENDING.value,
                        "created",
                        now,
                        now,
                        now,
                        origin or "spawn",
                    ),
                )
                await _append_event(conn, spec.name, now, None, AgentState.PENDING, "created")
            record = await _agent_in(conn, spec.name)
        if record.host != "local":
            self._hosts[record.name] = record.host
        else:
            self._hosts.pop(record.name, None)
        return record

    async def get_agent(self, name: str) -> AgentRecord | None:
        """The agent called ``name``, if any (a forgotten one is none)."""
        row = await self._one(
            "SELECT * FROM agents WHERE name = ? AND forgotten_at IS NULL", (name,)
        )
        return None if row is None else AgentRecord.from_row(row)

    async def list_agents(self) -> list[AgentRecord]:
        """Every agent, by name, but the forgotten ones."""
        rows = await self._all("SELECT * FROM agents WHERE forgotten_at IS NULL ORDER BY name", ())
        records = [self._agent_rows(str(row["name"]), row) for row in rows]
        self._agent_rows.keep_only([record.name for record in records])
        self._hosts = {record.name: record.host for record in records if record.host != "local"}
        return records

    def host_of(self, agent: str) -> str:
        """The host ``agent`` runs on, as last read or saved (``local`` when unknown)."""
        return self._hosts.get(agent, "local")

    async def delete_agent(self, name: str) -> bool:
        """Forget an agent with its events, runs and heartbeats; whether it existed."""
        async with self._transaction(f"delete agent {name}") as conn:
            cursor = await conn.execute("DELETE FROM agents WHERE name = ?", (name,))
            return cursor.rowcount > 0

    async def set_desired(self, name: str, desired: DesiredState) -> AgentRecord:
        """Record what operators want ``name`` to be doing."""
        now = to_epoch(self._clock.now())
        async with self._transaction(f"set desired state of {name}") as conn:
            await conn.execute(
                "UPDATE agents SET desired_state = ?, updated_at = ? WHERE name = ?",
                (desired.value, now, name),
            )
            return await _agent_in(conn, name)

    async def set_restarts(
        self,
        name: str,
        *,
        in_a_row: int,
        last_at: datetime | None,
        next_at: datetime | None,
    ) -> AgentRecord:
        """Record the watchdog's restart bookkeeping for ``name``."""
        async with self._transaction(f"set restarts of {name}") as conn:
            await conn.execute(
                "UPDATE agents SET restarts_in_a_row = ?, last_restart_at = ?,"
                " next_restart_at = ? WHERE name = ?",
                (
                    in_a_row,
                    None if last_at is None else to_epoch(last_at),
                    None if next_at is None else to_epoch(next_at),
                    name,
                ),
            )
            return await _agent_in(conn, name)

    async def set_state(
        self, name: str, state: AgentState, reason: str, at: datetime | None = None
    ) -> AgentRecord:
        """Move ``name`` to ``state`` and append the change to its events; a repeat of the
        current state and reason changes nothing."""
        when = self._epoch(at)
        async with self._transaction(f"set state of {name}") as conn:
            current = await _agent_in(conn, name)
            if current.state == state and current.state_reason == reason:
                return current
            await conn.execute(
                "UPDATE agents SET state = ?, state_reason = ?, updated_at = ?,"
                " state_changed_at = CASE WHEN state = ? THEN state_changed_at ELSE ? END"
                " WHERE name = ?",
                (state.value, reason, when, state.value, when, name),
            )
            await _append_event(conn, name, when, current.state, state, reason)
            return await _agent_in(conn, name)

    async def agent_events(self, name: str, limit: int = 50) -> list[AgentEvent]:
        """The latest ``limit`` state changes of ``name``, newest first."""
        rows = await self._all(
            "SELECT * FROM agent_events WHERE agent = ? ORDER BY id DESC LIMIT ?", (name, limit)
        )
        return [AgentEvent.from_row(row) for row in rows]

    # -- runs -----------------------------------------------------------------------------

    async def start_run(
        self, name: str, handle: RunHandle, at: datetime | None = None
    ) -> RunRecord:
        """Record that a process was launched for ``name`` (on the agent's host)."""
        when = self._epoch(at)
        async with self._transaction(f"record a run of {name}") as conn:
            agent = await _agent_in(conn, name)
            run_id = await insert_id(
                conn,
                "INSERT INTO runs (agent, backend, pid, pgid, start_ticks, session, run_dir,"
                " log_path, started_at, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    handle.backend,
                    handle.pid,
                    handle.pgid,
                    handle.start_ticks,
                    handle.session,
                    str(handle.run_dir),
                    str(handle.log_path),
                    when,
                    agent.host,
                ),
            )
            return await _run_in(conn, run_id)

    async def end_run(self, run_id: int, exit: ExitInfo, at: datetime | None = None) -> RunRecord:
        """Record how run ``run_id`` ended; a run that already ended keeps its first result."""
        when = self._epoch(at)
        async with self._transaction(f"end run {run_id}") as conn:
            await conn.execute(
                "UPDATE runs SET ended_at = ?, exit_code = ?, reason = ?"
                " WHERE id = ? AND ended_at IS NULL",
                (when, exit.exit_code, exit.reason, run_id),
            )
            return await _run_in(conn, run_id)

    async def open_runs(self) -> list[RunRecord]:
        """Runs not yet ended, oldest first: the processes to re-adopt after a restart."""
        rows = await self._all("SELECT * FROM runs WHERE ended_at IS NULL ORDER BY id", ())
        return [RunRecord.from_row(row) for row in rows]

    async def open_sessions(self) -> set[str]:
        """The backend sessions (tmux's) of the runs not yet ended."""
        rows = await self._all(
            "SELECT session FROM runs WHERE ended_at IS NULL AND session IS NOT NULL", ()
        )
        return {str(row[0]) for row in rows}

    async def last_run(self, name: str) -> RunRecord | None:
        """The most recent run of ``name``, open or ended."""
        row = await self._one(
            "SELECT * FROM runs WHERE agent = ? ORDER BY id DESC LIMIT 1", (name,)
        )
        return None if row is None else RunRecord.from_row(row)

    async def last_runs(self) -> dict[str, RunRecord]:
        """Every agent's most recent run, in one query (for ``ps`` and the watchdog)."""
        rows = await self._all(
            "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY agent)", ()
        )
        runs = {str(row["agent"]): self._last_runs(str(row["agent"]), row) for row in rows}
        self._last_runs.keep_only(runs)
        return runs

    # -- plumbing -------------------------------------------------------------------------

    def _epoch(self, at: datetime | None) -> float:
        return to_epoch(self._clock.now() if at is None else at)

    def fence(self, name: str, holder: str, epoch: int) -> None:
        """From now on, write only while ``holder`` holds lease ``name`` at ``epoch``: every
        write transaction checks it first, and raises :class:`LeaseLost` when it does not
        (see :mod:`fleet.ledger.leases`)."""
        self._fence = (name, holder, epoch)

    @asynccontextmanager
    async def _transaction(self, what: str, *, fenced: bool = True) -> AsyncIterator[Database]:
        """One write transaction, checked against the fence (:meth:`fence`) when ``fenced``;
        database failures become :class:`LedgerError`."""
        async with self._lock:
            try:
                await self._conn.begin()
                if fenced and self._fence is not None:
                    await check_fence(self._conn, *self._fence)
                yield self._conn
                await self._conn.commit()
            except BaseException as exc:
                # Shielded, so a second cancel cannot skip it (see SqliteDatabase.rollback).
                with contextlib.suppress(DatabaseError):
                    await asyncio.shield(self._conn.rollback())
                if isinstance(exc, DatabaseError):
                    raise LedgerError(f"ledger {self.where}: cannot {what}: {exc}") from exc
                raise

    async def _all(self, sql: str, params: Sequence[object]) -> list[Row]:
        async with self._lock:
            try:
                return await self._conn.execute_fetchall(sql, params)
            except DatabaseError as exc:
                raise LedgerError(f"ledger {self.where}: cannot read: {exc}") from exc

    async def _one(self, sql: str, params: Sequence[object]) -> Row | None:
        rows = await self._all(sql, params)
        return rows[0] if rows else None


async def _agent_in(conn: Database, name: str) -> AgentRecord:
    rows = list(await conn.execute_fetchall("SELECT * FROM agents WHERE name = ?", (name,)))
    if not rows:
        raise UnknownAgent(f"no agent is called {name!r}")
    return AgentRecord.from_row(rows[0])


async def _run_in(conn: Database, run_id: int) -> RunRecord:
    rows = list(await conn.execute_fetchall("SELECT * FROM runs WHERE id = ?", (run_id,)))
    if not rows:
        raise LedgerError(f"no run with id {run_id}")
    return RunRecord.from_row(rows[0])


async def _append_event(
    conn: Database,
    name: str,
    at: float,
    from_state: AgentState | None,
    to_state: AgentState,
    reason: str,
) -> None:
    await conn.execute(
        "INSERT INTO agent_events (agent, at, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?)",
        (name, at, None if from_state is None else from_state.value, to_state.value, reason),
    )
