"""What a watchdog sweep may ask of the supervisor: one frozen dataclass per action, each
with its agent and the reason said to the operator, and :data:`Action`, their union.

:func:`fleet.watchdog.decisions.sweep` returns them; :mod:`fleet.watchdog.actions` carries
them out.

What the supervisor does with each action (its half of the contract):

- ``MarkEnded``: close the run with :func:`~fleet.watchdog.decisions.ended_state` of its exit
  code.
- ``MarkStalled`` / ``MarkIdle`` / ``MarkRunning``: set the state, with the reason.
- ``KillForTimeout``: stop the run (not as an operator: ``ended_by_operator`` stays
  false) and record it as failed whatever its exit status, so ``on-failure`` applies.
  Repeated by each sweep while the process still lives; stopping must be idempotent.
- ``ScheduleRestart``: store ``next_restart_at = at``.
- ``Restart``: stop the process if one is left (a stalled one), launch again, then
  ``restarts_in_a_row = attempt``, ``last_restart_at = now``, ``next_restart_at = None``.
  A launch that fails leaves the agent failed, and the next sweep counts on from there.
- ``CancelRestart``: ``next_restart_at = None``.
- ``GiveUp``: report it, clear ``next_restart_at`` and set desired to stopped: the agent
  is left down, and that is what makes the storm reported once.
- ``ResetRestarts``: ``restarts_in_a_row = 0``. The reset is decided by the sweep rather
  than in the supervisor so that "healthy for backoff_max seconds" is judged with the same
  ``now`` and the same notion of healthy as the stall rules.
- An operator's ``spawn``/``restart`` sets ``restarts_in_a_row = 0`` and clears
  ``next_restart_at``; an operator's stop sets ``ended_by_operator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from fleet.names import AgentName


@dataclass(frozen=True, slots=True)
class MarkEnded:
    """The process is gone but the agent is recorded live: close the run."""

    name: AgentName
    exit_code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class KillForTimeout:
    """The run has gone on longer than ``spec.timeout``: stop it."""

    name: AgentName
    reason: str


@dataclass(frozen=True, slots=True)
class MarkStalled:
    """No sign of life for longer than the heartbeat timeout."""

    name: AgentName
    reason: str


@dataclass(frozen=True, slots=True)
class MarkIdle:
    """The agent said it is waiting for input."""

    name: AgentName
    reason: str


@dataclass(frozen=True, slots=True)
class MarkRunning:
    """The agent is working (it said so, or came back from a stall or from starting)."""

    name: AgentName
    reason: str


@dataclass(frozen=True, slots=True)
class ResetRestarts:
    """The run has been healthy for ``backoff_max`` seconds: restarts in a row start at 0."""

    name: AgentName
    reason: str


@dataclass(frozen=True, slots=True)
class CancelRestart:
    """A restart is pending but no longer needed."""

    name: AgentName
    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    """``max_restarts`` restarts in a row did not help: leave the agent down and report."""

    name: AgentName
    reason: str


@dataclass(frozen=True, slots=True)
class ScheduleRestart:
    """Relaunch the agent at ``at``; it will be restart number ``attempt`` in a row."""

    name: AgentName
    at: datetime
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class Restart:
    """The pending restart is due: relaunch now (stopping a stalled process first)."""

    name: AgentName
    attempt: int
    reason: str


Action: TypeAlias = (
    MarkEnded
    | KillForTimeout
    | MarkStalled
    | MarkIdle
    | MarkRunning
    | ResetRestarts
    | CancelRestart
    | GiveUp
    | ScheduleRestart
    | Restart
)
"""Everything :func:`~fleet.watchdog.decisions.sweep` may ask for; per agent, at most one of
each kind."""
