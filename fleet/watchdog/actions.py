"""The supervisor's half of the watchdog contract: what the sweep sees, and its actions
carried out.

:mod:`fleet.watchdog.decisions` decides; :class:`WatchdogHands` builds the
:class:`~fleet.watchdog.decisions.WatchdogSnapshot` it decides on and carries out the actions it
returns, including when the next restart is due (``next_restart_at``) and the notices of
stalls, restarts and give-ups. Runs are ended through :class:`RunControl`, so every change
to a run goes through the same code, under the same lock, as an operator's. A restart is a
launch like any other: :data:`Relaunch` gives it to the one admission (origin
``watchdog``) under the agent's lock, whose launcher stops the run, counts the restart
(``restarts_in_a_row``, ``last_restart_at``) and launches the next run going on with the
agent's task (keeping the cap the task's run was launched with,
:mod:`fleet.budgets.runs.arming`); an agent a reload removed since the sweep looked is not
restarted, with no word. Refused — a task another
agent handed on restarts only while that agent may still reach this one — the watchdog
gives up, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from fleet.errors import AgentNotRunning, FleetError
from fleet.events import EventKind, FleetEvent, Listener
from fleet.ledger.records.rows import AgentRecord, RunRecord
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.heartbeats import HeartbeatsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.spend.budgets import BudgetsStore
from fleet.model import AgentSpec, AgentState, DesiredState, ExitInfo
from fleet.names import AgentName
from fleet.runs.ending import Ending
from fleet.runs.layout import mtime
from fleet.timing.clock import Clock
from fleet.transcript.story import Outcome
from fleet.watchdog.decisions import AgentView, HeartbeatKind, WatchdogDefaults, WatchdogSnapshot
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

__all__ = ["Relaunch", "Relaunched", "RunControl", "WatchdogHands"]

_MARKED: dict[type[Action], AgentState] = {
    MarkStalled: AgentState.STALLED,
    MarkIdle: AgentState.IDLE,
    MarkRunning: AgentState.RUNNING,
}

log = logging.getLogger(__name__)


class RunControl(Protocol):
    """What carrying out the watchdog's actions needs of the runs (a
    :class:`~fleet.runs.keeper.RunKeeper`)."""

    def lock(self, name: AgentName) -> asyncio.Lock: ...

    async def record(self, name: str) -> AgentRecord: ...

    def is_alive(self, run: RunRecord) -> bool | None: ...

    def log_path(self, name: AgentName) -> Path: ...

    def host_down(self, host: str) -> str | None: ...

    async def stop_run(
        self, name: AgentName, *, force: bool, reason: str, ending: Ending | None = None
    ) -> ExitInfo: ...

    async def close(self, name: AgentName, run: RunRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class Relaunched:
    """What the admission made of a watchdog restart: ``started``, its run launched (not
    started with no word: the agent left the roster since the sweep looked); ``refused``:
    why it may not go on (the watchdog gives up, saying so); ``held``: why it waits (the
    restart stays due, and the next sweep asks again)."""

    started: bool
    refused: str | None = None
    held: str | None = None


Relaunch = Callable[[Restart], Awaitable[Relaunched]]
"""A due restart given to the one admission, which launches it (the supervisor's)."""


class WatchdogHands:
    """Shows the fleet to the watchdog and carries out what it decides."""

    def __init__(
        self,
        *,
        agents: AgentsStore,
        budgets: BudgetsStore,
        heartbeats: HeartbeatsStore,
        run_records: RunsStore,
        runs: RunControl,
        clock: Clock,
        emit: Listener,
        spec_of: Callable[[AgentRecord], AgentSpec],
        heartbeat_timeout: float,
        relaunch: Relaunch,
    ) -> None:
        """``spec_of`` gives the settings an agent runs with now (the roster's, which a
        reload may have changed, else those it was last launched with); ``relaunch``: where
        a due restart is launched (the one admission)."""
        self._agents = agents
        self._budgets = budgets
        self._heartbeats = heartbeats
        self._run_records = run_records
        self._runs = runs
        self._clock = clock
        self._emit = emit
        self._spec_of = spec_of
        self._heartbeat_timeout = heartbeat_timeout
        self._relaunch = relaunch

    async def snapshot(self) -> WatchdogSnapshot:
        """Every agent as the watchdog's :class:`AgentView`, with ``now``."""
        beats = await self._heartbeats.last_heartbeats()
        runs = await self._run_records.last_runs()
        frozen = {freeze.agent for freeze in await self._budgets.freezes()}
        views = []
        for record in await self._agents.list_agents():
            if record.name in frozen:
                continue  # paused by a budget's cutoff: silent on purpose, not stalled
            if self._runs.host_down(record.host) is not None:
                continue  # nothing is known of it: never marked ended, stalled or restarted
            run = runs.get(record.name)
            alive = None
            if run is not None and run.ended_at is None:
                alive = self._runs.is_alive(run)
            beat = beats.get(record.name)
            kind: HeartbeatKind = "beat"
            if beat is not None and beat[1] in ("working", "waiting"):
                kind = "working" if beat[1] == "working" else "waiting"
            views.append(
                AgentView(
                    name=record.name,
                    spec=self._spec_of(record),
                    state=record.state,
                    desired=record.desired,
                    process_alive=alive,
                    run_started_at=run.started_at if run is not None else None,
                    last_heartbeat=beat[0] if beat is not None else None,
                    last_heartbeat_kind=kind if beat is not None else None,
                    last_output_at=mtime(self._runs.log_path(record.name)),
                    exit_code=run.exit_code if run is not None else None,
                    ended_by_operator=record.state is AgentState.STOPPED,
                    restarts_in_a_row=record.restarts_in_a_row,
                    last_restart_at=record.last_restart_at,
                    next_restart_at=record.next_restart_at,
                    removed_from_roster=record.removed_at is not None,
                )
            )
        defaults = WatchdogDefaults(heartbeat_timeout=self._heartbeat_timeout)
        return WatchdogSnapshot(tuple(views), self._clock.now(), defaults)

    async def apply(self, actions: Sequence[Action]) -> None:
        """Carry out the watchdog's decisions (see :mod:`fleet.watchdog.decisions`), in
        order; the state marks that come one after another (a thousand agents found idle
        at once) in one ledger transaction."""
        marks: list[MarkStalled | MarkIdle | MarkRunning] = []
        for action in actions:
            if isinstance(action, MarkStalled | MarkIdle | MarkRunning):
                marks.append(action)
                continue
            await self._mark(marks)
            marks = []
            try:
                await self._apply(action)
            except FleetError as exc:
                log.error("watchdog: %s for %s failed: %s", type(action).__name__, action.name, exc)
        await self._mark(marks)

    async def _mark(self, marks: Sequence[MarkStalled | MarkIdle | MarkRunning]) -> None:
        """Set the states ``marks`` say, in one transaction; then tell of the stalls."""
        if not marks:
            return
        changes = [(mark.name, _MARKED[type(mark)], mark.reason) for mark in marks]
        try:
            unknown = set(await self._agents.set_states(changes))
        except FleetError as exc:
            log.error("watchdog: marking %d agent(s) failed: %s", len(marks), exc)
            return
        for mark in marks:
            if mark.name in unknown:
                log.error(
                    "watchdog: %s for %s failed: no such agent", type(mark).__name__, mark.name
                )
            elif isinstance(mark, MarkStalled):
                await self._emit(
                    FleetEvent(mark.name, EventKind.STALLED, AgentState.STALLED, mark.reason, False)
                )

    async def _apply(self, action: Action) -> None:
        name = action.name
        record = await self._runs.record(name)
        match action:
            case MarkEnded():
                run = await self._run_records.last_run(name)
                if run is not None and run.ended_at is None:
                    await self._runs.close(name, run)
            case KillForTimeout(reason=reason):
                async with self._runs.lock(name):
                    ending = Ending(
                        AgentState.FAILED, reason, by_operator=False, outcome=Outcome.TIMED_OUT
                    )
                    with contextlib.suppress(AgentNotRunning):
                        await self._runs.stop_run(name, force=False, reason=reason, ending=ending)
            case ScheduleRestart(at=at):
                await self._set_next_restart(record, at)
            case CancelRestart():
                await self._set_next_restart(record, None)
            case ResetRestarts():
                await self._agents.set_restarts(
                    name, in_a_row=0, last_at=record.last_restart_at, next_at=None
                )
            case GiveUp(reason=reason):
                await self._give_up(record, reason)
            case Restart():
                await self._restart(action)

    async def _restart(self, action: Restart) -> None:
        """``action`` through the one admission: started, told; refused, given up on,
        saying why; held, left due for the next sweep."""
        name, attempt, reason = action.name, action.attempt, action.reason
        relaunched = await self._relaunch(action)
        record = await self._runs.record(name)
        if relaunched.refused is not None:
            log.info("watchdog: not restarting %s: %s", name, relaunched.refused)
            await self._give_up(record, f"its restart is refused: {relaunched.refused}")
            return
        if relaunched.held is not None:
            log.info("watchdog: restart of %s waits: %s", name, relaunched.held)
            return
        if not relaunched.started:
            return
        most = self._spec_of(record).restart.max_restarts
        await self._emit(
            FleetEvent(
                name,
                EventKind.RESTARTED,
                AgentState.RUNNING,
                f"restart {attempt} of {most} ({reason})",
                False,
            )
        )

    async def _give_up(self, record: AgentRecord, reason: str) -> None:
        """No more restarts of ``record``'s agent; the operator told ``reason``."""
        await self._set_next_restart(record, None)
        await self._agents.set_desired(record.name, DesiredState.STOPPED)
        await self._emit(FleetEvent(record.name, EventKind.GAVE_UP, record.state, reason, False))

    async def _set_next_restart(self, record: AgentRecord, at: datetime | None) -> None:
        """Change only when the next restart is due; the count and the last restart stay."""
        await self._agents.set_restarts(
            record.name,
            in_a_row=record.restarts_in_a_row,
            last_at=record.last_restart_at,
            next_at=at,
        )
