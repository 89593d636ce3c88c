"""The launcher: the one place a run of an agent starts, which the admission launches
through (:meth:`Launcher.spawn`, the request whole) once it decided the launch may start now.

It is made before the admission and before the supervisor, over the run keeper
(:class:`~fleet.runs.keeper.RunKeeper`, which it makes), the roster as it is now
(:class:`~fleet.agents.current.CurrentRoster`) and the fleet's listeners
(:class:`~fleet.events.Listeners`); the admission is made over it, and the supervisor
(:class:`~fleet.supervisor.fleet.Fleet`) is handed both — so the launch runs one way,
origin → admission → launcher → run keeper, with no part reaching back for another.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import replace

from fleet.agents.current import CurrentRoster
from fleet.errors import AgentNotRunning
from fleet.events import Listeners
from fleet.ledger.records.rows import AgentOrigin, AgentRecord
from fleet.model import AgentSpec, AgentState, Fallback
from fleet.names import AgentName, agent_name
from fleet.runs.ending import Ending
from fleet.runs.hands import backend_named
from fleet.runs.keeper import RunKeeper
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.sessions.live import LiveSessions
from fleet.supervisor.admission.request import RESTARTS, LaunchRequest
from fleet.supervisor.spawn_spec import spawn_spec
from fleet.supervisor.status import AgentStatus, SpawnOutcome, agent_status
from fleet.supervisor.stores import FleetStores
from fleet.timing.clock import Clock
from fleet.transcript.story import Outcome
from fleet.watchdog.verdicts import Restart

log = logging.getLogger(__name__)


class Launcher:
    """Starts a run of the agent a request names, unless it already runs."""

    def __init__(
        self,
        *,
        stores: FleetStores,
        clock: Clock,
        kit: LaunchKit,
        roster: CurrentRoster,
        events: Listeners,
    ) -> None:
        """``kit``: what its launches are made with; ``roster``: the config's agents as
        they are now; ``events``: who hears what happens to the runs."""
        self.stores = stores
        self.clock = clock
        self.kit = kit
        self.roster_now = roster
        self.events = events
        # The live sessions, made before the run keeper that tells them of its runs.
        self.sessions = LiveSessions(
            agents=stores.agents,
            heartbeats=stores.heartbeats,
            runs=stores.runs,
            clock=clock,
            backend_of=functools.partial(backend_named, dict(kit.backends)),
            emit=events.emit,  # a turn's end is a fleet event
            approvals=kit.doors.approvals,
        )
        self.runs = RunKeeper(
            agents=stores.agents,
            runs=stores.runs,
            budgets=stores.budgets,
            clock=clock,
            kit=kit,
            emit=events.emit,
            roster=roster.values,
            sessions=self.sessions,
        )

    async def spawn(self, request: LaunchRequest) -> SpawnOutcome:
        """Start ``request``'s agent unless it already runs. Idempotent. Only the admission
        calls it (:meth:`fleet.supervisor.admission.admit.Admission.admit`), which decided the
        launch may start now. With ``request.collect``, wait briefly for its first output to
        include in the outcome. An agent the roster no longer has becomes an ad hoc one
        again; a forgotten one starts afresh. ``request.repo`` (and ``repo_base``): the
        repository it works on, its checkout the workdir; what it asks of its line there (a
        new one, its name, issue and co-author) is :meth:`LaunchRequest.asked`;
        ``request.resume``: its prompt continues the agent's last session where its runtime
        can (:meth:`fleet.runs.keeper.RunKeeper.launch`). A restart (origin ``restart``, or
        the ``watchdog``'s, ``request.restart``) stops the run and launches it again."""
        r, roster = request, self.roster_now
        if r.origin == "watchdog":
            return await self._watchdog_restart(agent_name(r.agent), r.restart)
        if r.origin in RESTARTS:
            return await self._restart(r)
        agent = agent_name(r.agent)
        async with self.runs.lock(agent):
            existing = await self.stores.agents.get_agent(agent)
            if existing is not None and existing.state.is_live:
                return SpawnOutcome(await self.status_of(existing), started=False)
            base = roster.get(agent) or (existing.spec if existing else None)
            spec = base or self.kit.settings.ad_hoc(agent)
            if agent not in roster:  # the defaults' grants and skills as they are now
                spec = roster.mcp.ad_hoc(spec)
            spec = roster.mcp.check(spawn_spec(spec, r))  # with what the request overrides
            origin: AgentOrigin = "roster" if agent in roster else "spawn"
            launched = await self.runs.launch(
                spec, reason=f"spawned by {r.by}", origin=origin, asked=r.asked(), resume=r.resume
            )
        ended = await self.runs.first_moments(agent, launched) if r.collect else None
        status = await self.status_of(await self.runs.record(agent))
        return SpawnOutcome(status, True, pid=launched.pid, ended=ended)

    async def _restart(self, r: LaunchRequest) -> SpawnOutcome:
        """Stop ``r``'s agent if it runs, then launch it again with its settings now (the
        roster's current ones, after a `roster reload`)."""
        record = await self.runs.record(r.agent)
        async with self.runs.lock(record.name):
            # Read again under the lock: a spawn or stop may have run while we waited for it.
            record = await self.runs.record(r.agent)
            spec = self.roster_now.mcp.check(self.spec_of(record))  # before the run stops
            if record.state.is_live:
                await self.runs.stop_run(record.name, force=False, reason=f"restarted by {r.by}")
            launched = await self.runs.launch(spec, reason=f"restarted by {r.by}")
        status = await self.status_of(await self.runs.record(record.name))
        return SpawnOutcome(status, True, pid=launched.pid)

    async def _watchdog_restart(self, name: AgentName, restart: Restart | None) -> SpawnOutcome:
        """The watchdog's ``restart`` of ``name``, carried out under the agent's lock, which
        its one caller holds from the agent's record read again through the admission to
        here (:meth:`fleet.supervisor.fleet.Fleet._relaunch`): its run stopped if it lives on
        (ended ``restarted``), the restart counted, and the next run launched going on with
        its task (:func:`continued`)."""
        if restart is None or not self.runs.lock(name).locked():
            raise RuntimeError(
                f"a watchdog restart of {name} is launched only by the watchdog's relaunch, "
                "under the agent's lock (Fleet._relaunch)"
            )
        attempt, reason, now = restart.attempt, restart.reason, self.clock.now()
        record = await self.runs.record(name)
        spec = self.roster_now.mcp.check(continued(self.spec_of(record), record.spec))
        if record.state.is_live:
            ending = Ending(AgentState.FAILED, reason, by_operator=False, outcome=Outcome.RESTARTED)
            with contextlib.suppress(AgentNotRunning):
                await self.runs.stop_run(name, force=False, reason=reason, ending=ending)
        await self.stores.agents.set_restarts(name, in_a_row=attempt, last_at=now, next_at=None)
        launched = await self.runs.launch(
            spec, reason=f"restart {attempt} by the watchdog: {reason}", continues=True
        )
        status = await self.status_of(await self.runs.record(name))
        return SpawnOutcome(status, True, pid=launched.pid)

    async def spec(self, name: str) -> AgentSpec:
        """The settings ``name`` runs with now (:class:`UnknownAgent` if nobody knows it)."""
        spec = self.roster_now.get(agent_name(name))
        return spec if spec is not None else self.spec_of(await self.runs.record(name))

    def spec_of(self, record: AgentRecord) -> AgentSpec:
        """The settings ``record``'s agent runs with now: the roster's current ones (after
        a `roster reload`), else those it was last launched with, given the ``defaults``'
        MCP grants and skills as they are now (an agent no roster names has no own)."""
        return self.roster_now.get(record.name) or self.roster_now.mcp.ad_hoc(record.spec)

    async def knows(self, name: str) -> bool:
        """Whether ``name`` is an agent the ledger or the roster knows."""
        known = name in self.roster_now
        return known or await self.stores.agents.get_agent(name) is not None

    async def names(self) -> set[str]:
        """Every agent the roster or the ledger knows (but the forgotten ones)."""
        known = {spec.name for spec in self.roster_now.specs()}
        return known | {record.name for record in await self.stores.agents.list_agents()}

    async def fallback_of(self, name: str) -> Fallback | None:
        """Where ``name``'s next run may start when its budget turns it away."""
        spec = self.roster_now.get(agent_name(name))
        if spec is None:
            record = await self.stores.agents.get_agent(agent_name(name))
            spec = record.spec if record is not None else None
        return spec.fallback if spec is not None else None

    def busy(self) -> set[AgentName]:
        """The agents a spawn, restart or stop is under way on: they hold a slot even while
        between two runs (a restart)."""
        return self.runs.busy()

    def roster(self) -> list[AgentSpec]:
        """The roster agents, by name."""
        return self.roster_now.specs()

    async def status_of(self, record: AgentRecord) -> AgentStatus:
        run = await self.stores.runs.last_run(record.name)
        beat = await self.stores.heartbeats.last_heartbeat(record.name)
        return agent_status(record, run, beat, self.runs.log_path(record.name))


def continued(spec: AgentSpec, launched: AgentSpec) -> AgentSpec:
    """What a restart of the watchdog launches: ``spec`` (the agent's settings now), with
    the cap of the task its last run (``launched``) belonged to — a cap given at spawn
    holds until its task ends — or, without one, the cap ``spec`` has."""
    if launched.run_budget is None:
        return spec
    return replace(spec, run_budget=launched.run_budget)
