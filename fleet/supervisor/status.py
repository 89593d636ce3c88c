"""The fleet's vocabulary shared by the supervisor and its callers: settings, what `ps`
shows, what spawn and roster reload did, and the events operators hear about."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from fleet.accounts.model import Account
from fleet.ledger.rows import AgentRecord, RunRecord
from fleet.ledger.run_reports import RunReport
from fleet.model import AgentSpec, AgentState
from fleet.model import RunBudget as RunBudget  # spawn's cap, re-exported with the settings
from fleet.names import AgentName
from fleet.permissions.config import PolicyDefaults
from fleet.runs.layout import latest, mtime
from fleet.sandbox.destinations import DEFAULT_ALLOW
from fleet.watchdog.decisions import DEFAULT_HEARTBEAT_TIMEOUT, in_trouble


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """The supervisor's knobs, from the config's ``defaults``."""

    state_dir: Path
    default_runtime: str = "stub"
    default_backend: str = "subprocess"
    stop_grace: float = 10.0
    reply_wait: float = 2.0  # how long `send` collects the agent's answer
    reply_quiet: float = 0.3  # ...ending early once output has been quiet this long
    # Seconds without a sign of life before "stalled"; the watchdog owns the default.
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT
    # Provider name -> base URL for agents' CLIs (the metering proxy, or an upstream).
    provider_urls: Mapping[str, str] = field(default_factory=dict)
    # An ad hoc agent's (sandbox, egress, egress_allow): the config's ``defaults``.
    confinement: tuple[str, str, tuple[str, ...]] = ("bwrap", "locked", DEFAULT_ALLOW)
    policy: PolicyDefaults = field(default_factory=PolicyDefaults)  # an ad hoc agent's
    run_budget: RunBudget | None = None  # an ad hoc agent's cap on each run: ``defaults``'
    # Directories first on an agent's PATH here: Fleetwarden's own tools (``fw-forge``).
    tool_path: tuple[str, ...] = ()
    # An ad hoc agent's ``git_name`` and ``git_email`` (``defaults``'; None: Fleetwarden's).
    git_identity: tuple[str | None, str | None] = (None, None)

    def ad_hoc(self, name: AgentName) -> AgentSpec:
        """The spec of an agent no roster names: the defaults' runtime, backend,
        confinement (without a sandbox, the host's network) and permission policy."""
        sandbox, egress, allow = self.confinement
        spec = AgentSpec(
            name=name,
            runtime=self.default_runtime,
            backend=self.default_backend,
            sandbox=sandbox,
            egress="open" if sandbox == "none" else egress,
            egress_allow=allow,
            run_budget=self.run_budget,
            git_name=self.git_identity[0],
            git_email=self.git_identity[1],
        )
        return self.policy.apply(spec)


class HeartbeatIssuer(Protocol):
    """Hands each agent the URL and token it proves it is alive with."""

    def url_for(self, agent: str) -> str: ...

    def token_for(self, agent: str) -> str: ...


class AccountAssigner(Protocol):
    """Picks, for a new run, the account that pays for each provider the agent uses
    (:meth:`fleet.accounts.book.AccountBook.assign`); raises ``AccountError`` saying why
    when there is none it may use."""

    def assign(self, agent: str, runtime: str, wanted: str | None) -> Mapping[str, Account]: ...


class ProviderUrlIssuer(Protocol):
    """Hands each agent its own base URL per provider (the metering proxy's)."""

    def urls_for(self, agent: str) -> Mapping[str, str]: ...


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
) -> AgentStatus:
    """``ps``'s view of an agent: its record, its last run, its last heartbeat and log."""
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
        removed_from_roster=record.removed_at,
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


class EventKind(enum.StrEnum):
    STARTED = "started"
    ENDED = "ended"
    REATTACHED = "reattached"
    STALLED = "stalled"
    RESTARTED = "restarted"
    GAVE_UP = "gave up"
    REFUSED = "refused"  # the roster's own launch (autostart) could not start


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """Something that happened to an agent that operators may want to hear about."""

    agent: AgentName
    kind: EventKind
    state: AgentState
    message: str
    by_operator: bool
    run_id: int | None = None  # the run it is about, when it is about one
    # The run ended while whoever launched it still waited on its first moments: the
    # answer to that launch is told first.
    at_once: bool = False


Listener = Callable[[FleetEvent], Awaitable[None]]
