"""The ledger's rows of agents, their state changes, their runs and the audit log: frozen
dataclasses built from SQLite rows (an agent's spec beyond its columns is
:mod:`fleet.ledger.records.specs`'; times are :mod:`fleet.ledger.records.epoch`'s)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch, optional_epoch
from fleet.ledger.records.specs import spec_with_extra
from fleet.model import (
    AgentSpec,
    AgentState,
    DesiredState,
    ExitInfo,
    RunHandle,
)
from fleet.names import AgentName

T = TypeVar("T")

AuditOutcome = Literal["ok", "error", "denied"]
AgentOrigin = Literal["roster", "spawn"]
"""Where an agent's settings came from: the config's roster, or an operator's ``spawn``."""


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An agent as the ledger knows it: its spec, what operators want, and what it is doing."""

    name: AgentName
    runtime: str
    backend: str
    model: str | None
    prompt: str | None
    workdir: Path | None
    env: Mapping[str, str]
    secret_env: tuple[str, ...]
    desired: DesiredState
    state: AgentState
    state_reason: str
    state_changed_at: datetime
    created_at: datetime
    updated_at: datetime
    extra: Mapping[str, Any]
    restarts_in_a_row: int
    last_restart_at: datetime | None
    next_restart_at: datetime | None
    origin: AgentOrigin = "spawn"
    removed_at: datetime | None = None  # when the roster dropped it; None while in it
    host: str = "local"  # where it runs: `local`, or a name from the config's `hosts`

    @property
    def spec(self) -> AgentSpec:
        """The launch spec rebuilt from the stored columns."""
        columns = AgentSpec(
            name=self.name,
            runtime=self.runtime,
            backend=self.backend,
            model=self.model,
            prompt=self.prompt,
            workdir=self.workdir,
            env=dict(self.env),
            secret_env=self.secret_env,
            host=self.host,
        )
        return spec_with_extra(columns, self.extra)

    @classmethod
    def from_row(cls, row: Row) -> AgentRecord:
        """Build from a row of ``agents``."""
        env = json.loads(row["env_json"])
        secret_env = json.loads(row["secret_env_json"])
        return cls(
            name=AgentName(row["name"]),
            runtime=row["runtime"],
            backend=row["backend"],
            model=row["model"],
            prompt=row["prompt"],
            workdir=None if row["workdir"] is None else Path(row["workdir"]),
            env={str(k): str(v) for k, v in env.items()},
            secret_env=tuple(str(v) for v in secret_env),
            desired=DesiredState(row["desired_state"]),
            state=AgentState(row["state"]),
            state_reason=row["state_reason"],
            state_changed_at=from_epoch(row["state_changed_at"]),
            created_at=from_epoch(row["created_at"]),
            updated_at=from_epoch(row["updated_at"]),
            extra=json.loads(row["spec_extra_json"]),
            restarts_in_a_row=int(row["restarts_in_a_row"]),
            last_restart_at=optional_epoch(row["last_restart_at"]),
            next_restart_at=optional_epoch(row["next_restart_at"]),
            origin="roster" if row["origin"] == "roster" else "spawn",
            removed_at=optional_epoch(row["removed_at"]),
            host=str(row["host"]),
        )


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """One state change of an agent; ``from_state`` is ``None`` for its creation."""

    id: int
    agent: AgentName
    at: datetime
    from_state: AgentState | None
    to_state: AgentState
    reason: str

    @classmethod
    def from_row(cls, row: Row) -> AgentEvent:
        """Build from a row of ``agent_events``."""
        return cls(
            id=row["id"],
            agent=AgentName(row["agent"]),
            at=from_epoch(row["at"]),
            from_state=None if row["from_state"] is None else AgentState(row["from_state"]),
            to_state=AgentState(row["to_state"]),
            reason=row["reason"],
        )


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One launch of an agent's process, open until ``ended_at`` is set."""

    id: int
    agent: AgentName
    backend: str
    pid: int
    pgid: int
    start_ticks: int | None
    session: str | None
    run_dir: Path
    log_path: Path
    started_at: datetime
    ended_at: datetime | None
    exit_code: int | None
    reason: str | None
    host: str = "local"  # the machine it ran on

    @property
    def handle(self) -> RunHandle:
        """How the backend finds this run's process again."""
        return RunHandle(
            backend=self.backend,
            pid=self.pid,
            pgid=self.pgid,
            run_dir=self.run_dir,
            log_path=self.log_path,
            start_ticks=self.start_ticks,
            session=self.session,
        )

    @property
    def exit(self) -> ExitInfo | None:
        """How the run ended, or ``None`` while it is open."""
        if self.ended_at is None:
            return None
        return ExitInfo(exit_code=self.exit_code, reason=self.reason or "")

    @classmethod
    def from_row(cls, row: Row) -> RunRecord:
        """Build from a row of ``runs``."""
        return cls(
            id=row["id"],
            agent=AgentName(row["agent"]),
            backend=row["backend"],
            pid=row["pid"],
            pgid=row["pgid"],
            start_ticks=row["start_ticks"],
            session=row["session"],
            run_dir=Path(row["run_dir"]),
            log_path=Path(row["log_path"]),
            started_at=from_epoch(row["started_at"]),
            ended_at=optional_epoch(row["ended_at"]),
            exit_code=row["exit_code"],
            reason=row["reason"],
            host=str(row["host"]),
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One message an operator sent the bot (or one of their schedules ran: ``source`` is
    ``schedule:<id>`` rather than ``typed``), and what came of it."""

    id: int
    at: datetime
    connector: str
    sender: str
    room: str
    thread: str | None
    text: str
    command: str | None
    outcome: AuditOutcome
    detail: str | None
    source: str = "typed"

    @classmethod
    def from_row(cls, row: Row) -> AuditEntry:
        """Build from a row of ``audit``."""
        return cls(
            id=row["id"],
            at=from_epoch(row["at"]),
            connector=row["connector"],
            sender=row["sender"],
            room=row["room"],
            thread=row["thread"],
            text=row["text"],
            command=row["command"],
            outcome=row["outcome"],
            detail=row["detail"],
            source=row["source"],
        )


class Parsed(Generic[T]):
    """Records already built from rows, by key: a row read again unchanged is not parsed
    again. ``ps`` and the watchdog read every agent's row and last run each time; with a
    thousand agents, parsing their JSON and times again was most of what they cost."""

    def __init__(self, parse: Callable[[Row], T]) -> None:
        self._parse = parse
        self._held: dict[str, tuple[tuple[object, ...], T]] = {}

    def __call__(self, key: str, row: Row) -> T:
        values = tuple(row)
        held = self._held.get(key)
        if held is not None and held[0] == values:
            return held[1]
        record = self._parse(row)
        self._held[key] = (values, record)
        return record

    def keep_only(self, keys: Collection[str]) -> None:
        """Forget the records of every key but ``keys`` (what a full read just saw)."""
        for key in self._held.keys() - set(keys):
            del self._held[key]
