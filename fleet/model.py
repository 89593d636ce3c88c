"""The fleet's domain types: agent states, what to launch, and how to find a launched process."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Everything needed to launch an agent. Secrets appear only as variable names."""

    name: AgentName
    runtime: str
    backend: str = "subprocess"
    model: str | None = None
    prompt: str | None = None
    workdir: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """What a runtime decided to run: argv (never a shell string), environment, directory."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path


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
