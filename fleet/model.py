"""The fleet's domain types: agent states, what to launch, and how to find a launched process."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from fleet.destinations import DEFAULT_ALLOW
from fleet.names import AgentName


class AgentState(enum.StrEnum):
    """Where an agent is in its life.

    ``pending → starting → running ↔ idle → stalled → exited | failed | stopped``
    """

    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    IDLE = "idle"
    STALLED = "stalled"
    EXITED = "exited"  # ended by itself with status 0
    FAILED = "failed"  # ended by itself with a non-zero status, or could not start
    STOPPED = "stopped"  # ended because an operator asked

    @property
    def is_live(self) -> bool:
        """Whether a process is (believed to be) running for the agent."""
        return self in _LIVE


_LIVE = frozenset({AgentState.STARTING, AgentState.RUNNING, AgentState.IDLE, AgentState.STALLED})


class DesiredState(enum.StrEnum):
    """What the operators want: the supervisor converges the observed state to this."""

    RUNNING = "running"
    STOPPED = "stopped"


class RestartMode(enum.StrEnum):
    """When the watchdog relaunches an agent that ended or stalled."""

    NEVER = "never"
    ON_FAILURE = "on-failure"  # a non-zero exit, or a stall
    ALWAYS = "always"  # any end that an operator did not ask for


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How often, and how soon, an agent is relaunched: the n-th restart waits
    ``min(backoff_initial * 2**(n-1), backoff_max)`` seconds; after ``max_restarts``
    restarts in a row without a healthy run of ``backoff_max`` seconds it is left down
    and reported (a restart storm)."""

    mode: RestartMode = RestartMode.NEVER
    max_restarts: int = 5
    backoff_initial: float = 5.0
    backoff_max: float = 300.0


@dataclass(frozen=True, slots=True)
class Fallback:
    """Another runtime an agent's *next* run may start on when its budget turns the run
    away (Claude Code → Codex); a run in progress is never switched between CLIs."""

    runtime: str
    account: str | None = None
    model: str | None = None


class PermissionMode(enum.StrEnum):
    """What an agent may do without asking (mapped onto each CLI's own rules, never onto
    keystrokes): ``ask`` every action the CLI would ask about is asked in chat; ``edits``
    file edits inside the workdir pass, other asks come to chat; ``full`` everything passes
    (sandboxed agents only); ``read-only`` the CLI's plan / read-only mode."""

    ASK = "ask"
    EDITS = "edits"
    FULL = "full"
    READ_ONLY = "read-only"


DEFAULT_ASK_WITHIN = 1800.0
"""Seconds a run at its cap with ``cutoff: ask`` waits for an answer, unless configured."""


@dataclass(frozen=True, slots=True)
class RunBudget:
    """A cap on one run's spend (``spawn --max-tokens N | --max-usd X``, roster
    ``run_budget:``); ``None`` leaves that measure uncapped. ``cutoff``: what happens to
    the run past it — ``refuse`` its model requests, ``freeze`` it too (frozen until it
    is resumed or ends), ``stop`` it, or ``ask`` (frozen, and its operators asked to raise
    the cap or stop it) — as a budget's ``cutoff`` does. ``since``: when the task it caps
    began (:mod:`fleet.budgets.runs.arming`), stamped at its launch; the runs the watchdog
    restarts keep it, and count their spend from it.

    With ``ask``: ``ask_within`` seconds to wait for an answer, ``then`` the fallback when
    nobody answers (``stop``, or ``freeze``: stay frozen), and the raise offered
    (``offer_tokens``, ``offer_usd``; ``None``: the cap its task began with).
    ``raised_tokens``, ``raised_usd``: what operators raised it by during its task — a raise
    belongs to the task, so a new task begins at the cap less them
    (:func:`fleet.budgets.runs.arming.task_spec`)."""

    max_tokens: int | None = None
    max_usd: float | None = None
    cutoff: str = "refuse"
    since: datetime | None = None
    ask_within: float = DEFAULT_ASK_WITHIN
    then: str = "freeze"
    offer_tokens: int | None = None
    offer_usd: float | None = None
    raised_tokens: int = 0
    raised_usd: float = 0.0


class ToolList(Protocol):
    """What a grant is checked against: a server's allow-list (``None``: every tool it
    lists), as :class:`fleet.mcp.model.McpServer` has it."""

    @property
    def tools(self) -> frozenset[str] | None: ...


@dataclass(frozen=True, slots=True)
class McpGrant:
    """An agent's right to one MCP server of the config's ``mcp:`` section (``mcp: [name]``
    or ``mcp: {name: {tools: [...]}}`` in the roster): ``tools`` narrows the server's own
    allow-list (``None``: as the server allows). :mod:`fleet.mcp.model` has the servers."""

    server: str
    tools: frozenset[str] | None = None

    def allows(self, server: ToolList, tool: str) -> bool:
        """Whether the agent may see and call ``tool`` of ``server``."""
        for allowed in (server.tools, self.tools):
            if allowed is not None and tool not in allowed:
                return False
        return True


DEFAULT_MESSAGES_PER_HOUR = 30
"""How many messages an agent may send its peers an hour, unless configured."""

DEFAULT_HEARTBEAT_TIMEOUT = 120.0
"""Seconds without a sign of life before an agent counts as stalled, unless configured (the
watchdog judges by it; an agent's own ``heartbeat_timeout`` overrides it)."""


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Everything needed to launch an agent. Secrets appear only as variable names.

    ``argv`` is the command line of the ``command`` runtime (from the roster only,
    never from chat). ``heartbeat_timeout``: seconds without a heartbeat before the
    agent counts as stalled (``None``: the fleet default). ``timeout``: a wall-clock
    limit for one run (``None``: none)."""

    name: AgentName
    runtime: str
    backend: str = "subprocess"
    model: str | None = None
    prompt: str | None = None
    workdir: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: tuple[str, ...] = ()
    role: str | None = None
    autostart: bool = False
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    heartbeat_timeout: float | None = None
    timeout: float | None = None
    argv: tuple[str, ...] = ()
    # The account or pool that pays for its model requests (None: the provider's default).
    account: str | None = None
    fallback: Fallback | None = None
    # Its sandbox (``bwrap`` or ``none``), its network (``open`` or ``locked``) and, when
    # locked, the hosts it may still reach through the allow-list's forward proxy.
    sandbox: str = "bwrap"
    egress: str = "locked"
    egress_allow: tuple[str, ...] = DEFAULT_ALLOW
    # What it may do without asking (:class:`PermissionMode`), and rules beside the mode:
    # ``allow`` passes without asking, ``deny`` is refused without asking, each a pattern
    # such as ``Bash(git *)`` or ``Edit`` (:mod:`fleet.permissions.rules`). Asks wait in chat
    # for ``approval_timeout`` seconds (then denied, as a timeout); at most
    # ``max_open_approvals`` of one agent are open at once (more are denied at once).
    permissions: PermissionMode = PermissionMode.EDITS
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    approval_timeout: float = 1800.0
    max_open_approvals: int = 5
    run_budget: RunBudget | None = None  # a cap on each run's spend
    # Start a run only if its quote holds at most this many dollars (``None``: any quote).
    quote_under: float | None = None
    # Where it runs: ``local`` (this machine), or the name of a ``hosts:`` entry.
    host: str = "local"
    # The ``repos:`` entry it works on (its workdir is then its run's checkout, on a branch
    # of its own), and the branch a new line is cut from (``spawn --base``; ``None``: the
    # repository's default branch).
    repo: str | None = None
    repo_base: str | None = None
    # Who its commits are by on a repository (``git_name``/``git_email``, each may say
    # ``{agent}`` and ``{host}``; ``None``: Fleetwarden's default, see fleet.repos.line.identity).
    git_name: str | None = None
    git_email: str | None = None
    # Working with its peers (:mod:`fleet.peers`): what it is for, in one line (the roster's
    # ``role:``, told to its peers), the agents it may message (``talks_to``), whether a
    # message to it while it does not run waits for its next run (``wait``) or starts one
    # (``start``), and how many messages it may send an hour.
    purpose: str | None = None
    talks_to: tuple[AgentName, ...] = ()
    wake: str = "wait"
    messages_per_hour: int = DEFAULT_MESSAGES_PER_HOUR
    # Its workdir shown read-only in its sandbox: a review agent's run reads a line's
    # commit in a checkout of its own (:mod:`fleet.repos.line.review`) and changes nothing.
    workdir_read_only: bool = False
    # The team's tools it may use: the MCP servers of the config's ``mcp:`` it is granted
    # (reached through its MCP door, never holding their credentials), and the skill
    # directories (each a ``SKILL.md`` folder, :mod:`fleet.mcp.config.skills`) its CLI is given.
    mcp: tuple[McpGrant, ...] = ()
    skills: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """What a runtime decided to run: argv (never a shell string), environment, directory,
    and files to write first (per-agent config such as Codex's ``config.toml``; paths are
    inside the agent's private home)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    files: Mapping[Path, str] = field(default_factory=dict)
    # Folders inside the agent's home emptied before ``files`` are written: ones the CLI
    # reads whole and Fleetwarden fills whole (its skills), so what they hold is what the
    # config gives now — not a skill taken out of it, nor one the agent put there.
    fresh: tuple[Path, ...] = ()
    # Whether the agent reads input while it runs (the stub, a TUI). A headless CLI run
    # reads none: it gets end of input at once, or some CLIs wait on stdin forever.
    takes_input: bool = True
    # Whether ``argv`` starts bubblewrap (:mod:`fleet.sandbox`): the shim then records the
    # sandbox's init process and leaves the stop signals to the sandbox's first command.
    sandboxed: bool = False
    # With ``sandboxed``: the host uid (and gid) bubblewrap runs as (Fleetwarden is root and
    # the agent has a lane of its own), the rlimits (``NPROC=4096``) it runs under, and the
    # control groups that cap its memory and processes.
    run_as: int | None = None
    rlimits: tuple[str, ...] = ()
    cgroups: tuple[str, ...] = ()  # control group directories the sandbox is put in
    # A live session (:mod:`fleet.sessions`): the name of the protocol the agent speaks on
    # its stdin and stdout (``claude-stream``, ``codex-app-server``, ``pi-rpc``), so one
    # process serves every turn; ``None``: one headless run per turn, or a TUI. A live
    # session takes input (its control channel is the run's stdin FIFO, which outlives a
    # restart of Fleetwarden).
    session: str | None = None
    # With ``session``: the first turn, written to the session by its driver once the
    # process runs (a live session's argv carries no prompt).
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class RunHandle:
    """How a backend finds a launched process again, even after Fleetwarden restarts.

    ``start_ticks`` is the process start time from ``/proc`` so a recycled pid is never
    mistaken for our agent.
    """

    backend: str
    pid: int
    pgid: int
    run_dir: Path
    log_path: Path
    start_ticks: int | None = None
    session: str | None = None


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """How a run ended. ``exit_code`` is negative for death by signal, ``None`` if unknown."""

    exit_code: int | None
    reason: str
