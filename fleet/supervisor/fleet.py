"""The supervisor: the one place that starts, watches, feeds and stops agents.

It owns the truth about the fleet in the ledger — desired state, observed state and
one ``runs`` row per launch — and the operations on it: spawn, stop, restart, send,
``ps``, logs and the roster. The runs themselves (launching, the one watcher task per
live process, ending them, reattaching) are kept by :class:`~fleet.runs.keeper.RunKeeper`;
the watchdog's decisions are carried out by :class:`~fleet.watchdog.actions.WatchdogHands`,
and ``send`` by :class:`~fleet.runs.follow_ups.FollowUps`. Its launches are made with one
:class:`~fleet.runs.launch.launch_kit.LaunchKit`; its callers see it through the narrow
protocols of :mod:`fleet.supervisor.interfaces`.
On start it *reconciles*: runs the ledger believes open are reattached if their process
still lives, or closed with the status the shim left on disk. An agent never runs twice:
every operation on one agent holds that agent's lock, and ``spawn`` of a live agent only
reports it.

Agents outlive Fleetwarden on purpose: stopping the supervisor stops watching, not
the agents; the next start reattaches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from fleet.budgets.pacing.report_windows import window_start
from fleet.errors import AgentNotRunning, AgentStillRunning
from fleet.events import EventKind, FleetEvent, Listener
from fleet.ledger import Freeze, UsageTotal
from fleet.ledger.records.rows import AgentRecord
from fleet.ledger.stores.running.runs import RunReport
from fleet.mcp.config.rules import McpRules
from fleet.model import (
    AgentSpec,
    AgentState,
    DesiredState,
    ExitInfo,
    Fallback,
    PermissionMode,
)
from fleet.names import AgentName
from fleet.runs.ending import Ending
from fleet.runs.follow_ups import FollowUps
from fleet.runs.launch.launch_kit import FleetSettings, HeartbeatIssuer
from fleet.runs.launch.strict import strict_refusal
from fleet.runs.output.outputs import AgentOutputs
from fleet.runs.output.stories import RunStories
from fleet.runs.pauses import Pauses
from fleet.runs.session_control import SessionControl
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.admission.request import Admitted, LaunchRequest, Queued, Refused
from fleet.supervisor.autostart import adopt, autostart
from fleet.supervisor.launcher import Launcher
from fleet.supervisor.listing import left_running, listing
from fleet.supervisor.status import AgentStatus, RosterDiff, SpawnOutcome
from fleet.transcript.logtail import tail_lines
from fleet.transcript.story import Outcome
from fleet.watchdog.actions import Relaunched, WatchdogHands
from fleet.watchdog.decisions import WatchdogSnapshot
from fleet.watchdog.verdicts import Action, Restart

__all__ = [
    "AgentStatus",
    "EventKind",
    "Fleet",
    "FleetEvent",
    "FleetSettings",
    "HeartbeatIssuer",
    "Listener",
    "RosterDiff",
    "SpawnOutcome",
]

log = logging.getLogger(__name__)


class SupervisorState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class Fleet:
    """Starts, watches and stops the agents."""

    def __init__(self, *, launcher: Launcher, admission: Admission) -> None:
        """``launcher``: where its runs start (made before it, with the run keeper, the
        roster as it is now and the listeners); ``admission``: the admission every launch
        passes — its autostart, a restart and the watchdog's relaunch too —, made over the
        launcher before it: a fleet has no launch of its own around it."""
        stores, kit, clock = launcher.stores, launcher.kit, launcher.clock
        self._stores = stores
        self._backends = dict(kit.backends)
        self._settings = kit.settings
        self._clock = clock
        self._launcher = launcher
        self._roster = launcher.roster_now
        self._events = launcher.events
        self._emit = launcher.events.emit
        self._state = SupervisorState.NEW
        self.left_running: str | None = None  # said on stopping: the agents that go on
        self._runs = launcher.runs
        self._admission = admission
        stories = RunStories(
            agents=stores.agents,
            runs=stores.runs,
            lines=stores.lines,
            metering=stores.metering,
            clock=clock,
        )
        self.outputs = AgentOutputs(self._runs, stores.runs, stories, kit.runtimes)
        self.sessions = launcher.sessions
        self._control = SessionControl(stores.agents, self.sessions, self._runs, self._roster_of)
        self._follow_ups = FollowUps(stores.runs, self._runs, kit.runtimes, self.sessions)
        self._pauses = Pauses(self._runs, stores.runs, stores.budgets, self._emit)
        self._watchdog = WatchdogHands(
            agents=stores.agents,
            budgets=stores.budgets,
            heartbeats=stores.heartbeats,
            run_records=stores.runs,
            runs=self._runs,
            clock=clock,
            emit=self._emit,
            spec_of=self._spec_of,
            heartbeat_timeout=kit.settings.heartbeat_timeout,
            relaunch=self._relaunch,  # its restarts pass the one admission
        )

    # -- lifecycle ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` for every :class:`FleetEvent` from now on."""
        self._events.subscribe(listener)

    async def start(self) -> None:
        """Reconcile the ledger with what actually runs, then watch the live agents."""
        if self._state is not SupervisorState.NEW:
            raise RuntimeError(f"Fleet.start() called in state {self._state.value}")
        self._state = SupervisorState.RUNNING
        await self.sessions.start()
        await self._runs.reconcile()
        await self._stop_unruled()
        # An entry that left the config while Fleetwarden was down counts as removed now.
        await self._stores.agents.sync_roster(self._roster.now())
        await self._autostart(self._roster.values(), reason="autostart")

    async def _stop_unruled(self) -> None:
        """Under ``enforce: strict``, stop each run reattached whose settings it refuses
        (no sandbox, open egress: launched before strictness was on), saying so in the log
        and in the run's ending; nothing under ``enforce: warn``."""
        for record in await self._stores.agents.list_agents():
            why = strict_refusal(record.spec, self._settings.strict)
            if why is None or not record.state.is_live:
                continue
            log.warning("stopping reattached agent %s: %s", record.name, why)
            with contextlib.suppress(AgentNotRunning):
                await self._runs.stop_run(record.name, force=False, reason=why)

    async def _autostart(self, specs: Iterable[AgentSpec], *, reason: str) -> list[AgentName]:
        """The roster's own launches through the admission
        (:mod:`fleet.supervisor.autostart`); a refused one is an event."""
        return await autostart(
            specs,
            reason=reason,
            agents=self._stores.agents,
            forge=self._stores.forge,
            spawn_queue=self._stores.spawn_queue,
            admission=self._admission,
            emit=self._emit,
        )

    async def stop(self) -> None:
        """Stop watching. The agents keep running; the next start reattaches them (said
        once in the log, naming them, and kept in :attr:`left_running` for the console)."""
        if self._state is not SupervisorState.RUNNING:
            return
        self._state = SupervisorState.STOPPED
        try:
            self.left_running = left_running(await self.ps())
        except Exception:  # the stop goes on; only the word on what keeps running is lost
            log.debug("could not list the agents that keep running", exc_info=True)
        if self.left_running is not None:
            log.info("%s", self.left_running)
        await self._runs.stop_watching()
        await self.sessions.stop()

    # -- queries -----------------------------------------------------------------------

    async def ps(self) -> list[AgentStatus]:
        """Every agent the ledger knows, by name, with its tokens today and its refused
        egress (a few queries, whatever the fleet size)."""
        return await listing(self._stores, self._runs, self.window_start("today"))

    def window_start(self, window: str) -> datetime:
        """When report window ``window`` began
        (:data:`fleet.budgets.pacing.report_windows.WINDOWS`)."""
        # The one place the report timezone is chosen: None is the host's; a configured
        # timezone goes here.
        return window_start(window, self._clock.now(), None)

    async def usage(
        self, since: datetime, *, agent: str | None = None, host: str | None = None
    ) -> list[UsageTotal]:
        """Token use since ``since`` per agent and model (``host``: of the requests made
        there); usage outlives its agents."""
        return await self._stores.metering.usage_totals(since, agent=agent, host=host)

    async def knows(self, name: str) -> bool:
        """Whether ``name`` is an agent the ledger or the roster knows."""
        return await self._launcher.knows(name)

    async def status(self, name: str) -> AgentStatus:
        return await self._status(await self._runs.record(name))

    async def logs(self, name: str, lines: int) -> list[str]:
        """The last ``lines`` lines of the agent's output (across its runs)."""
        record = await self._runs.record(name)
        return await asyncio.to_thread(tail_lines, self._runs.log_path(record.name), lines)

    def busy(self) -> set[AgentName]:
        """The agents a spawn, restart or stop is under way on: they hold a slot even while
        between two runs (a restart)."""
        return self._runs.busy()

    async def spec(self, name: str) -> AgentSpec:
        """The settings ``name`` runs with now (:class:`UnknownAgent` if nobody knows it)."""
        return await self._launcher.spec(name)

    def roster(self) -> list[AgentSpec]:
        """The roster agents, by name."""
        return self._roster.specs()

    async def fallback_of(self, name: str) -> Fallback | None:
        """Where ``name``'s next run may start when its budget turns it away."""
        return await self._launcher.fallback_of(name)

    async def apply_roster(
        self, roster: Mapping[AgentName, AgentSpec], mcp: McpRules | None = None
    ) -> RosterDiff:
        """Adopt a new roster (and what the config now allows a launch on MCP servers and
        skills, ``mcp``) without touching running agents; start new autostart ones.
        Agents it drops are marked removed: they run on until stopped, never restarted."""
        old = self._roster.replace(roster, mcp)

        async def started(specs: list[AgentSpec]) -> list[AgentName]:
            return await self._autostart(specs, reason="autostart after roster reload")

        return await adopt(self._stores.agents, old, self._roster.now(), started)

    async def snapshot(self, name: str) -> str:
        """What the agent's screen shows now (the log's end once it has stopped)."""
        return await self.outputs.screen(name)

    async def drift(self) -> list[str]:
        """Sessions on our backends that no run in the ledger accounts for: reported,
        never killed (an operator may have started them by hand)."""
        known = await self._stores.runs.open_sessions()
        listed = await asyncio.gather(*(b.sessions() for b in self._backends.values()))
        return sorted(set().union(*listed) - known)

    # -- control -----------------------------------------------------------------------

    async def spawn(self, request: LaunchRequest) -> SpawnOutcome:
        """Start ``request``'s agent unless it already runs (:meth:`Launcher.spawn`). Only
        the admission calls it, which decided the launch may start now."""
        return await self._launcher.spawn(request)

    async def stop_agent(
        self,
        name: str,
        *,
        force: bool = False,
        by: str = "operator",
        outcome: Outcome = Outcome.STOPPED,
    ) -> ExitInfo:
        """Stop the agent's whole process group; record it as stopped by ``by``."""
        record = await self._runs.record(name)
        reason = f"stopped by {by}"
        async with self._runs.lock(record.name):
            await self._stores.agents.set_desired(record.name, DesiredState.STOPPED)
            ending = Ending(AgentState.STOPPED, reason, by_operator=True, outcome=outcome)
            return await self._runs.stop_run(record.name, force=force, reason=reason, ending=ending)

    async def forget(self, name: str) -> None:
        """Take ended agent ``name`` out of ``ps`` and the watchdog's sight; its runs, usage
        and audit stay in the ledger for reports. A later ``spawn`` starts it afresh."""
        record = await self._runs.record(name)
        async with self._runs.lock(record.name):
            record = await self._runs.record(name)
            if record.state.is_live:
                raise AgentStillRunning(f"{name} is {record.state.value}: `stop {name}` first")
            await self._stores.agents.forget_agent(record.name)

    async def restart(self, name: str, *, by: str = "operator") -> Admitted:
        """Stop the agent if it runs, then launch it again with the same spec — through the
        admission (origin ``restart``: the concurrency caps hold it, without queueing it;
        the budgets and the quote are not asked, as ever)."""
        return await self._admission.admit(LaunchRequest(name, origin="restart", by=by))

    async def send(self, name: str, text: str, *, by: str = "operator") -> RunReport | None:
        """Give the agent more work. Agents that read their input (the stub, a TUI in tmux)
        get ``text`` typed in. A headless CLI run has ended by the time it answered; its
        runtime then plans a new run that resumes the session with ``text`` (``claude -p
        TEXT --resume ID``) — its report is returned if it ended at once."""
        return await self._follow_ups.send(name, text, by)

    async def interrupt(self, name: str, *, by: str = "operator") -> str:
        """End ``name``'s turn in progress, keeping its process and session; what was done."""
        return await self._control.interrupt(name, by)

    async def set_permissions(
        self, name: str, mode: PermissionMode, *, by: str = "operator"
    ) -> str:
        """Change ``name``'s permission mode: in its running session where its CLI can, else
        from its next run (kept on its spec either way); the answer says which."""
        return await self._control.set_permissions(name, mode, by)

    # -- cutoffs: pausing an agent's processes (fleet.backends.freezer)
    # ---------------------------

    async def freeze(
        self, name: str, *, reason: str, budget: str = "", by: str | None = None
    ) -> bool:
        """Pause all of ``name``'s run (its control group frozen by the kernel, else SIGSTOP
        to each process), for ``budget``'s cutoff or by ``by``; whether it ran."""
        return await self._pauses.freeze(name, reason=reason, budget=budget, by=by)

    async def thaw(self, name: str) -> bool:
        """Continue ``name``'s processes (thawed, and SIGCONT) if a freeze paused them;
        whether it had."""
        return await self._pauses.thaw(name)

    async def frozen(self) -> list[Freeze]:
        """The agents a cutoff or a person has paused."""
        return await self._pauses.frozen()

    # -- the watchdog (fleet.watchdog.decisions decides; fleet.watchdog.actions carries it out) --

    async def watchdog_snapshot(self) -> WatchdogSnapshot:
        """Every agent as the watchdog's :class:`~fleet.watchdog.decisions.AgentView`, with
        ``now``."""
        return await self._watchdog.snapshot()

    async def apply_watchdog(self, actions: Sequence[Action]) -> None:
        """Carry out the watchdog's decisions (see :mod:`fleet.watchdog.decisions`)."""
        await self._watchdog.apply(actions)

    # -- internals ---------------------------------------------------------------------

    async def _relaunch(self, restart: Restart) -> Relaunched:
        """The watchdog's ``restart`` through the one admission (origin ``watchdog``), and
        what came of it — under the agent's lock from its record read again to its run
        launched, as the watchdog's restart always was: an agent a reload removed since the
        sweep looked is not restarted (with no word), and the hand-off stage asks of the very
        run the restart goes on from (no run of another task may start between)."""
        request = LaunchRequest(restart.name, origin="watchdog", by="the watchdog", restart=restart)
        name = restart.name
        async with self._runs.lock(name):
            record = await self._runs.record(name)
            if record.removed_at is not None:  # a reload since the snapshot
                log.info("watchdog: not restarting %s: removed from the roster", name)
                return Relaunched(started=False)
            admitted = await self._admission.admit(request)
        if isinstance(admitted, Refused):
            return Relaunched(started=False, refused=admitted.why)
        if isinstance(admitted, Queued):
            return Relaunched(started=False, held=admitted.why)
        return Relaunched(started=admitted.outcome.started)

    async def _status(self, record: AgentRecord) -> AgentStatus:
        return await self._launcher.status_of(record)

    def _roster_of(self) -> dict[AgentName, AgentSpec]:
        return self._roster.now()  # replaced whole by a roster reload

    def _spec_of(self, record: AgentRecord) -> AgentSpec:
        """The settings ``record``'s agent runs with now: the roster's current ones (after
        a `roster reload`), else those it was last launched with."""
        return self._launcher.spec_of(record)
