"""The ledger's rows: frozen dataclasses built from SQLite rows, and the epoch/datetime bridge."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from fleet.ledger.database.engine import Row
from fleet.model import (
    DEFAULT_ASK_WITHIN,
    DEFAULT_MESSAGES_PER_HOUR,
    AgentSpec,
    AgentState,
    DesiredState,
    ExitInfo,
    Fallback,
    McpGrant,
    PermissionMode,
    RestartMode,
    RestartPolicy,
    RunBudget,
    RunHandle,
)
from fleet.names import AgentName

T = TypeVar("T")

AuditOutcome = Literal["ok", "error", "denied"]
AgentOrigin = Literal["roster", "spawn"]
"""Where an agent's settings came from: the config's roster, or an operator's ``spawn``."""


def to_epoch(at: datetime) -> float:
    """``at`` as unix epoch seconds; naive datetimes are refused rather than guessed at."""
    if at.tzinfo is None:
        raise ValueError(f"the ledger stores timezone-aware times only, got naive {at!r}")
    return at.timestamp()


def from_epoch(seconds: float) -> datetime:
    """Unix epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def _optional_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else from_epoch(seconds)


def spec_extra_json(spec: AgentSpec) -> str:
    """The spec fields kept in ``agents.spec_extra_json``."""
    extra: dict[str, Any] = {
        "role": spec.role,
        "autostart": spec.autostart,
        "restart": {
            "mode": spec.restart.mode.value,
            "max_restarts": spec.restart.max_restarts,
            "backoff_initial": spec.restart.backoff_initial,
            "backoff_max": spec.restart.backoff_max,
        },
        "heartbeat_timeout": spec.heartbeat_timeout,
        "timeout": spec.timeout,
        "argv": list(spec.argv),
        "account": spec.account,
        "fallback": None if spec.fallback is None else asdict(spec.fallback),
        "sandbox": spec.sandbox,
        "egress": spec.egress,
        "egress_allow": list(spec.egress_allow),
        "permissions": spec.permissions.value,
        "allow": list(spec.allow),
        "deny": list(spec.deny),
        "approval_timeout": spec.approval_timeout,
        "max_open_approvals": spec.max_open_approvals,
        "run_budget": _run_budget_extra(spec.run_budget),
        "quote_under": spec.quote_under,
        "repo": spec.repo,
        "repo_base": spec.repo_base,
        "git_name": spec.git_name,
        "git_email": spec.git_email,
        "purpose": spec.purpose,
        "talks_to": list(spec.talks_to),
        "wake": spec.wake,
        "messages_per_hour": spec.messages_per_hour,
        "workdir_read_only": spec.workdir_read_only,
        "mcp": [_grant_extra(grant) for grant in spec.mcp],
        "skills": [str(path) for path in spec.skills],
    }
    return json.dumps(extra, sort_keys=True)


def _grant_extra(grant: McpGrant) -> dict[str, object]:
    tools = None if grant.tools is None else sorted(grant.tools)
    return {"server": grant.server, "tools": tools}


def _grants(raw: object) -> tuple[McpGrant, ...]:
    """The MCP grants kept with a spec (none in rows made before agents had them)."""
    grants = []
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("server"), str):
            continue
        tools = item.get("tools")
        allowed = frozenset(str(t) for t in tools) if isinstance(tools, list) else None
        grants.append(McpGrant(item["server"], allowed))
    return tuple(grants)


def _skills(raw: object) -> tuple[Path, ...]:
    """The skill directories kept with a spec: absolute paths only, junk dropped."""
    items = raw if isinstance(raw, list) else ()
    return tuple(Path(p) for p in items if isinstance(p, str) and p.startswith("/"))


def _fallback(raw: object) -> Fallback | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("runtime"), str):
        return None
    account, model = raw.get("account"), raw.get("model")
    return Fallback(
        raw["runtime"],
        account if isinstance(account, str) else None,
        model if isinstance(model, str) else None,
    )


def _restart_policy(raw: object) -> RestartPolicy:
    if not isinstance(raw, dict):
        return RestartPolicy()
    default = RestartPolicy()
    return RestartPolicy(
        mode=RestartMode(raw.get("mode", default.mode.value)),
        max_restarts=int(raw.get("max_restarts", default.max_restarts)),
        backoff_initial=float(raw.get("backoff_initial", default.backoff_initial)),
        backoff_max=float(raw.get("backoff_max", default.backoff_max)),
    )


def _permission_mode(raw: object, sandbox: str) -> PermissionMode:
    if raw is None:  # stored before modes were: the default for its sandbox
        return PermissionMode.ASK if sandbox == "none" else PermissionMode.EDITS
    try:
        return PermissionMode(str(raw))
    except ValueError:
        return PermissionMode.ASK  # an unknown word from a newer version: the safest mode


def _run_budget_extra(budget: RunBudget | None) -> dict[str, object] | None:
    if budget is None:
        return None
    since = None if budget.since is None else to_epoch(budget.since)
    return {**asdict(budget), "since": since}


def _run_budget(raw: object) -> RunBudget | None:
    if not isinstance(raw, dict):
        return None
    tokens, usd, cutoff = raw.get("max_tokens"), raw.get("max_usd"), raw.get("cutoff")
    since, within = raw.get("since"), raw.get("ask_within")
    offer_tokens, offer_usd = raw.get("offer_tokens"), raw.get("offer_usd")
    raised_tokens, raised_usd = raw.get("raised_tokens"), raw.get("raised_usd")
    return RunBudget(
        int(tokens) if isinstance(tokens, int) else None,
        float(usd) if isinstance(usd, int | float) else None,
        cutoff if cutoff in ("refuse", "freeze", "stop", "ask") else "refuse",
        from_epoch(since) if isinstance(since, int | float) else None,
        float(within) if isinstance(within, int | float) and within > 0 else DEFAULT_ASK_WITHIN,
        "stop" if raw.get("then") == "stop" else "freeze",
        int(offer_tokens) if isinstance(offer_tokens, int) else None,
        float(offer_usd) if isinstance(offer_usd, int | float) else None,
        int(raised_tokens) if isinstance(raised_tokens, int) else 0,
        float(raised_usd) if isinstance(raised_usd, int | float) else 0.0,
    )


def _optional_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _per_hour(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULT_MESSAGES_PER_HOUR


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
        argv = self.extra.get("argv")
        role = self.extra.get("role")
        account = self.extra.get("account")
        return AgentSpec(
            name=self.name,
            runtime=self.runtime,
            backend=self.backend,
            model=self.model,
            prompt=self.prompt,
            workdir=self.workdir,
            env=dict(self.env),
            secret_env=self.secret_env,
            role=role if isinstance(role, str) else None,
            autostart=bool(self.extra.get("autostart", False)),
            restart=_restart_policy(self.extra.get("restart")),
            heartbeat_timeout=_optional_float(self.extra.get("heartbeat_timeout")),
            timeout=_optional_float(self.extra.get("timeout")),
            argv=tuple(str(a) for a in argv) if isinstance(argv, list) else (),
            account=account if isinstance(account, str) else None,
            fallback=_fallback(self.extra.get("fallback")),
            sandbox=str(self.extra.get("sandbox", "bwrap")),
            egress=str(self.extra.get("egress", "open")),
            egress_allow=tuple(str(h) for h in self.extra.get("egress_allow") or ()),
            permissions=_permission_mode(
                self.extra.get("permissions"), str(self.extra.get("sandbox", "bwrap"))
            ),
            allow=tuple(str(p) for p in self.extra.get("allow") or ()),
            deny=tuple(str(p) for p in self.extra.get("deny") or ()),
            approval_timeout=_optional_float(self.extra.get("approval_timeout")) or 1800.0,
            max_open_approvals=int(self.extra.get("max_open_approvals") or 5),
            run_budget=_run_budget(self.extra.get("run_budget")),
            quote_under=_optional_float(self.extra.get("quote_under")),
            host=self.host,
            repo=_optional_str(self.extra.get("repo")),  # absent from rows made before
            repo_base=_optional_str(self.extra.get("repo_base")),
            git_name=_optional_str(self.extra.get("git_name")),
            git_email=_optional_str(self.extra.get("git_email")),
            # Its peers (absent from rows made before agents had them: none).
            purpose=_optional_str(self.extra.get("purpose")),
            talks_to=tuple(AgentName(str(n)) for n in self.extra.get("talks_to") or ()),
            wake="start" if self.extra.get("wake") == "start" else "wait",
            messages_per_hour=_per_hour(self.extra.get("messages_per_hour")),
            workdir_read_only=self.extra.get("workdir_read_only") is True,
            mcp=_grants(self.extra.get("mcp")),
            skills=_skills(self.extra.get("skills")),
        )

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
            last_restart_at=_optional_epoch(row["last_restart_at"]),
            next_restart_at=_optional_epoch(row["next_restart_at"]),
            origin="roster" if row["origin"] == "roster" else "spawn",
            removed_at=_optional_epoch(row["removed_at"]),
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
            ended_at=_optional_epoch(row["ended_at"]),
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
