"""The fleet's vocabulary shared by the supervisor and its callers: what `ps` shows, what
spawn and roster reload did, and the gate the roster's own launches pass."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fleet.ledger.records.rows import AgentRecord, RunRecord
from fleet.ledger.stores.running.runs import RunReport
from fleet.model import AgentState
from fleet.model import RunBudget as RunBudget  # spawn's cap, re-exported with the settings
from fleet.names import AgentName
from fleet.runs.layout import latest, mtime
from fleet.watchdog.decisions import in_trouble


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """One agent as ``ps`` shows it."""

    name: AgentName
    runtime: str
    backend: str
    model: str | None
    state: AgentState
    reason: str
    pid: int | None
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    last_activity: datetime | None
    last_heartbeat: datetime | None = None
    tokens_today: int | None = None  # from the metering ledger; None where not looked up
    # What those tokens cost, priced (None: not looked up, or none of them priced).
    usd_today: float | None = None
    queued_until: datetime | None = None  # the agent's budget holds its requests until then
    frozen: str | None = None  # why a budget's cutoff paused its processes, when it did
    # When a roster reload (or a start) found it gone from the config: never restarted since.
    removed_from_roster: datetime | None = None
    egress_refused: int = 0  # refused egress attempts, all time (ledger: egress_refusals)
    host: str = "local"  # where it runs: `local`, or a host of the config's `hosts:`
    host_down: str | None = None  # why its host cannot be reached now: its state unknown

    @property
    def trouble(self) -> str | None:
        """What is wrong with the agent by the watchdog's verdict (its state, with the
        reason the watchdog gave), or ``None`` when it is healthy (:func:`in_trouble`)."""
        if not in_trouble(self.state):
            return None
        return f"{self.state.value}: {self.reason}" if self.reason else self.state.value


def agent_status(
    record: AgentRecord,
    run: RunRecord | None,
    heartbeat: datetime | None,
    log: Path,
    *,
    tokens_today: int | None = None,
    usd_today: float | None = None,
    frozen: str | None = None,
    egress_refused: int = 0,
    host_down: str | None = None,
) -> AgentStatus:
    """``ps``'s view of an agent: its record, its last run, its last heartbeat and log
    (and what ``ps`` adds: its tokens today and their cost, its freeze, its refused egress,
    its host's state), built once — a fleet's ``ps`` builds a thousand."""
    ended = run is None or run.ended_at is not None
    return AgentStatus(
        name=record.name,
        host=record.host,
        runtime=record.runtime,
        backend=record.backend,
        model=record.model,
        state=record.state,
        reason=record.state_reason,
        pid=None if ended or run is None else run.handle.pid,
        started_at=run.started_at if run is not None else None,
        ended_at=run.ended_at if run is not None else None,
        exit_code=run.exit_code if run is not None else None,
        last_activity=latest(heartbeat, mtime(log)),
        last_heartbeat=heartbeat,
        tokens_today=tokens_today,
        usd_today=usd_today,
        removed_from_roster=record.removed_at,
        frozen=frozen,
        egress_refused=egress_refused,
        host_down=host_down,
    )


@dataclass(frozen=True, slots=True)
class SpawnOutcome:
    """What ``spawn`` did: ``started`` is false when the agent was already running.
    ``pid`` is the launched process's; ``ended`` the run's report when it ended in its
    first moments (a CLI that exits at once)."""

    status: AgentStatus
    started: bool
    pid: int | None = None
    ended: RunReport | None = None


@dataclass(frozen=True, slots=True)
class RosterDiff:
    """What ``apply_roster`` changed. ``changed_running`` keep their old settings until
    restarted; ``started`` are new ``autostart`` agents it launched; ``removed_running``
    are removed agents still running, until stopped (the watchdog restarts none);
    ``repos_added``: repositories the reload began to work on."""

    added: tuple[AgentName, ...]
    removed: tuple[AgentName, ...]
    changed: tuple[AgentName, ...]
    changed_running: tuple[AgentName, ...]
    started: tuple[AgentName, ...]
    removed_running: tuple[AgentName, ...] = ()
    repos_added: tuple[str, ...] = ()
