"""The watchdog's decisions: from a snapshot of the fleet and the time, what to do.

:func:`sweep` is pure — no I/O, no clock. The watchdog job (:mod:`scheduler.watchdog_job`) takes a
:class:`WatchdogSnapshot` from the supervisor (one :class:`AgentView` per agent, ``now``
from its injected clock), calls :func:`sweep`, and hands the actions back to the
supervisor to carry out: :class:`WatchedFleet` is the interface the supervisor provides.

Every rule is level-triggered: the same snapshot always gives the same actions, in the
same order (agents by name, then the order of the table below), and once the supervisor
has applied them the next sweep asks for nothing new.

Liveness is the latest of ``last_heartbeat`` and ``last_output_at``; a signal from before
``run_started_at`` belongs to an earlier run and does not count. A run that has given no
signal yet is measured from its start.

Per agent, one sweep decides, in this order::

    while live (starting | running | idle | stalled):
      process_alive is False .............. MarkEnded      → exited | failed | stopped
      run older than spec.timeout ......... KillForTimeout, and nothing else this sweep:
                                            a later sweep sees the end and judges it
      last heartbeat "waiting" ............ MarkIdle       (not stalled: it waits for input)
      liveness older than heartbeat_timeout MarkStalled
      fresh; last heartbeat "working", or
        starting/stalled with a fresh sign  MarkRunning
      running|idle for backoff_max seconds
        with restarts_in_a_row > 0 ........ ResetRestarts

    then, on the state those lead to (a run that needs a restart: stalled or failed
    under on-failure; stalled, failed or exited under always; never when desired is
    stopped, the run was ended by an operator, the state is stopped, or the agent was
    removed from the roster — whatever its stored policy says):
      a restart pending, none needed ...... CancelRestart  (it recovered, or was stopped)
      needed, restarts_in_a_row >= max .... GiveUp         (a restart storm)
      needed, pending and due ............. Restart(attempt = restarts_in_a_row + 1)
      needed, none pending ................ ScheduleRestart(at = now + delay(attempt))

    delay(n) = min(backoff_initial * 2**(n-1), backoff_max)

What the supervisor does with each action is said in :mod:`fleet.watchdog.verdicts`.

The restart delay is a lower bound: a due restart happens at the first sweep after it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal, Protocol, runtime_checkable

from fleet.model import DEFAULT_HEARTBEAT_TIMEOUT, AgentSpec, AgentState, DesiredState, RestartMode
from fleet.names import AgentName
from fleet.watchdog.verdicts import (
    Action,
    CancelRestart,
    GiveUp,
    KillForTimeout,
    MarkEnded,
    MarkIdle,
    MarkRunning,
    MarkStalled,
    ResetRestarts,
    Restart,
    ScheduleRestart,
)

__all__ = [
    "DEFAULT_HEARTBEAT_TIMEOUT",
    "TROUBLED",
    "Action",
    "AgentView",
    "HeartbeatKind",
    "WatchdogDefaults",
    "WatchdogSnapshot",
    "WatchedFleet",
    "ended_state",
    "in_trouble",
    "restart_delay",
    "sweep",
]

HeartbeatKind = Literal["working", "waiting", "beat"]
"""What a heartbeat said: busy, waiting for input, or just alive (no state given)."""

TROUBLED = frozenset({AgentState.STALLED, AgentState.FAILED})
"""The states that mean an agent is in trouble."""


def in_trouble(state: AgentState) -> bool:
    """Whether an agent in ``state`` is in trouble: the one rule every surface shows.

    Liveness is judged here once, by :func:`sweep`, with each agent's own
    ``heartbeat_timeout`` and its signals (a "waiting" heartbeat, output as well as beats);
    the state it leaves is the verdict. So an agent waiting for input, one quiet within a
    longer timeout, and a program that only prints are healthy everywhere, and a stalled
    one is stalled everywhere: no surface judges by a heartbeat's age alone."""
    return state in TROUBLED


@dataclass(frozen=True, slots=True)
class WatchdogDefaults:
    """Fleet-wide values for agents whose spec leaves them unset."""

    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT

    def __post_init__(self) -> None:
        if not self.heartbeat_timeout > 0:
            raise ValueError(f"heartbeat_timeout must be > 0, got {self.heartbeat_timeout!r}")


@dataclass(frozen=True, slots=True)
class AgentView:
    """One agent as the supervisor sees it at the moment of the snapshot.

    ``process_alive`` is ``None`` when unknown (no check was possible). ``exit_code``,
    ``ended_by_operator`` describe the latest run's end, if it ended. The restart fields
    are the supervisor's bookkeeping, updated as the actions say. ``removed_from_roster``:
    a roster reload dropped the agent, so it is never restarted (a stall is still reported).
    """

    name: AgentName
    spec: AgentSpec
    state: AgentState
    desired: DesiredState
    process_alive: bool | None
    run_started_at: datetime | None
    last_heartbeat: datetime | None = None
    last_heartbeat_kind: HeartbeatKind | None = None
    last_output_at: datetime | None = None
    exit_code: int | None = None
    ended_by_operator: bool = False
    restarts_in_a_row: int = 0
    last_restart_at: datetime | None = None
    next_restart_at: datetime | None = None
    removed_from_roster: bool = False


@dataclass(frozen=True, slots=True)
class WatchdogSnapshot:
    """What one sweep judges: every agent, the moment they were looked at, the defaults."""

    views: tuple[AgentView, ...]
    now: datetime
    defaults: WatchdogDefaults


@runtime_checkable
class WatchedFleet(Protocol):
    """What the watchdog job needs from the supervisor (which implements it)."""

    async def watchdog_snapshot(self) -> WatchdogSnapshot:
        """Every agent as an :class:`AgentView`, with ``now`` from the injected clock."""
        ...

    async def apply_watchdog(self, actions: Sequence[Action]) -> None:
        """Carry out :func:`sweep`'s actions, as the module docstring says."""
        ...


# --- The sweep ----------------------------------------------------------------------------


def sweep(snapshot: Sequence[AgentView], now: datetime, defaults: WatchdogDefaults) -> list[Action]:
    """The actions the fleet needs at ``now``: agents by name, each agent's actions in the
    order of the module's table. Raises ``ValueError`` if an agent appears twice."""
    views = sorted(snapshot, key=lambda view: view.name)
    for earlier, later in pairwise(views):
        if earlier.name == later.name:
            raise ValueError(f"agent {earlier.name!r} appears twice in the snapshot")
    actions: list[Action] = []
    for view in views:
        actions.extend(_agent_actions(view, now, defaults))
    return actions


def ended_state(exit_code: int | None, by_operator: bool) -> AgentState:
    """The state a run's end leads to: stopped (an operator), exited (0), else failed."""
    if by_operator:
        return AgentState.STOPPED
    return AgentState.EXITED if exit_code == 0 else AgentState.FAILED


def restart_delay(attempt: int, backoff_initial: float, backoff_max: float) -> float:
    """Seconds to wait before restart number ``attempt`` (1 for the first) in a row."""
    exponent = min(max(attempt - 1, 0), 64)  # 2**64 × any sane initial is past any max
    return min(backoff_initial * math.ldexp(1.0, exponent), backoff_max)


def _agent_actions(view: AgentView, now: datetime, defaults: WatchdogDefaults) -> list[Action]:
    actions: list[Action] = []
    state = view.state
    if state.is_live:
        if view.process_alive is False:
            actions.append(MarkEnded(view.name, view.exit_code, _ended_reason(view)))
            state = ended_state(view.exit_code, view.ended_by_operator)
        elif (overrun := _overrun(view, now)) is not None:
            # Nothing else until its end is seen: then the restart rules judge that end.
            return [KillForTimeout(view.name, overrun)]
        else:
            state = _liveness(view, now, defaults, actions)
            if (healthy := _healthy_long_enough(view, state, now)) is not None:
                actions.append(ResetRestarts(view.name, healthy))
    actions.extend(_restart_actions(view, state, now))
    return actions


def _liveness(
    view: AgentView, now: datetime, defaults: WatchdogDefaults, actions: list[Action]
) -> AgentState:
    """Stalled, idle or running, from the signals of this run; appends the Mark* needed."""
    heartbeat = _this_run(view.last_heartbeat, view)
    kind = view.last_heartbeat_kind if heartbeat is not None else None
    if kind == "waiting" and heartbeat is not None:
        if view.state is not AgentState.IDLE:
            ago = _seconds(now - heartbeat)
            actions.append(MarkIdle(view.name, f"waiting for input (said so {ago} ago)"))
        return AgentState.IDLE
    signs = [t for t in (heartbeat, _this_run(view.last_output_at, view)) if t is not None]
    reference = max(signs) if signs else view.run_started_at
    if reference is None:  # no start time, no signal: nothing to judge by
        return view.state
    limit = view.spec.heartbeat_timeout
    if limit is None:
        limit = defaults.heartbeat_timeout
    silent = (now - reference).total_seconds()
    if silent > limit:
        if view.state is not AgentState.STALLED:
            if signs:
                reason = f"no heartbeat or output for {_seconds(silent)}"
            else:
                reason = f"no heartbeat or output since the run started {_seconds(silent)} ago"
            reason += f" (timeout {_seconds(limit)})"
            if view.removed_from_roster:
                reason += "; not restarted: it is no longer in the roster"
            actions.append(MarkStalled(view.name, reason))
        return AgentState.STALLED
    wakes = view.state in (AgentState.STALLED, AgentState.STARTING) and bool(signs)
    if (kind == "working" or wakes) and view.state is not AgentState.RUNNING:
        if kind == "working":
            reason = "working"
        elif view.state is AgentState.STALLED:
            reason = "signs of life again"
        else:
            reason = "first sign of life"
        actions.append(MarkRunning(view.name, f"{reason} ({_seconds(now - max(signs))} ago)"))
        return AgentState.RUNNING
    return view.state


def _overrun(view: AgentView, now: datetime) -> str | None:
    limit, started = view.spec.timeout, view.run_started_at
    if limit is None or started is None:
        return None
    ran = (now - started).total_seconds()
    if ran <= limit:
        return None
    return f"run went on for {_seconds(ran)}, past its timeout of {_seconds(limit)}"


def _healthy_long_enough(view: AgentView, state: AgentState, now: datetime) -> str | None:
    healthy = state in (AgentState.RUNNING, AgentState.IDLE)
    if not healthy or view.restarts_in_a_row <= 0 or view.run_started_at is None:
        return None
    up = (now - view.run_started_at).total_seconds()
    window = view.spec.restart.backoff_max
    if up < window:
        return None
    return (
        f"healthy for {_seconds(up)} (at least {_seconds(window)}) after "
        f"{view.restarts_in_a_row} restart(s) in a row"
    )


def _restart_actions(view: AgentView, state: AgentState, now: datetime) -> list[Action]:
    why = _restart_cause(view, state)
    pending = view.next_restart_at
    if why is None:
        if pending is None:
            return []
        return [CancelRestart(view.name, _no_restart_reason(view, state))]
    policy = view.spec.restart
    done = view.restarts_in_a_row
    if done >= policy.max_restarts:
        return [
            GiveUp(
                view.name,
                f"{why}; giving up after {done} restart(s) in a row "
                f"(max_restarts {policy.max_restarts}): restart storm",
            )
        ]
    attempt = done + 1
    if pending is None:
        delay = restart_delay(attempt, policy.backoff_initial, policy.backoff_max)
        at = now + timedelta(seconds=delay)
        reason = f"{why}; restart {attempt} of at most {policy.max_restarts} in {_seconds(delay)}"
        return [ScheduleRestart(view.name, at, attempt, reason)]
    if pending <= now:
        return [Restart(view.name, attempt, f"{why}; restart {attempt} of {policy.max_restarts}")]
    return []


def _restart_cause(view: AgentView, state: AgentState) -> str | None:
    """Why the run needs a restart under its policy, or ``None`` if it does not."""
    mode = view.spec.restart.mode
    if mode is RestartMode.NEVER or view.desired is not DesiredState.RUNNING:
        return None
    if view.removed_from_roster:
        return None
    if view.ended_by_operator and not state.is_live:
        return None
    if state is AgentState.STALLED:
        return "stalled"
    if state is AgentState.FAILED:
        return _exit_words(view.exit_code, "failed")
    if state is AgentState.EXITED and mode is RestartMode.ALWAYS:
        return _exit_words(view.exit_code, "exited")
    return None


def _no_restart_reason(view: AgentView, state: AgentState) -> str:
    if view.removed_from_roster:
        return "it was removed from the roster"
    if view.desired is not DesiredState.RUNNING:
        return "no longer wanted running"
    if view.ended_by_operator and not state.is_live:
        return "an operator stopped it"
    if view.spec.restart.mode is RestartMode.NEVER:
        return "its restart policy is never"
    return f"no restart needed: it is {state.value}"


def _ended_reason(view: AgentView) -> str:
    if view.ended_by_operator:
        return "the process is gone (stopped by an operator)"
    return f"the process is gone ({_exit_words(view.exit_code, 'ended')})"


def _exit_words(exit_code: int | None, verb: str) -> str:
    if exit_code is None:
        return f"{verb}, exit status unknown"
    if exit_code < 0:
        return f"{verb}, killed by signal {-exit_code}"
    return f"{verb} with exit status {exit_code}"


def _this_run(when: datetime | None, view: AgentView) -> datetime | None:
    """``when`` if it belongs to the current run (not before it started)."""
    if when is None:
        return None
    if view.run_started_at is not None and when < view.run_started_at:
        return None
    return when


def _seconds(value: float | timedelta) -> str:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    return f"{round(seconds, 1):g}s"
