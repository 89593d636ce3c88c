"""The supervisor: the one place that starts, watches, feeds and stops agents.

It owns the truth about the fleet in the ledger — desired state, observed state and
one ``runs`` row per launch — and keeps one watcher task per live process, which
records how the process ended. On start it *reconciles*: runs the ledger believes
open are reattached if their process still lives, or closed with the status the
shim left on disk. An agent never runs twice: every operation on one agent holds
that agent's lock, and ``spawn`` of a live agent only reports it.

Agents outlive Fleetwarden on purpose: stopping the supervisor stops watching, not
the agents; the next start reattaches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from fleet.backends.base import Backend
from fleet.clock import Clock
from fleet.errors import AgentNotRunning, FleetError, LaunchFailed, UnknownAgent
from fleet.ledger import Ledger, UsageTotal
from fleet.ledger.rows import AgentRecord, RunRecord
from fleet.logtail import size_of, tail_lines
from fleet.model import (
    AgentSpec,
    AgentState,
    DesiredState,
    ExitInfo,
    LaunchPlan,
    RestartMode,
)
from fleet.names import AgentName, agent_name
from fleet.runs import AgentPaths, append_marker, collect_output, latest, mtime, write_files
from fleet.runtimes import RuntimeContext, RuntimeRegistry
from fleet.status import (
    AgentStatus,
    EventKind,
    FleetEvent,
    FleetSettings,
    HeartbeatIssuer,
    Listener,
    ProviderUrlIssuer,
    RosterDiff,
    SpawnOutcome,
)
from fleet.windows import window_start
from fleet.watchdog import (
    Action,
    AgentView,
    CancelRestart,
    GiveUp,
    HeartbeatKind,
    KillForTimeout,
    MarkEnded,
    MarkIdle,
    MarkRunning,
    MarkStalled,
    ResetRestarts,
    Restart,
    ScheduleRestart,
    WatchdogDefaults,
    WatchdogSnapshot,
)

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


@dataclass(frozen=True, slots=True)
class _Ending:
    """How a run that Fleetwarden ends is to be recorded."""

    state: AgentState
    reason: str
    by_operator: bool


class SupervisorState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class Fleet:
    """Starts, watches and stops the agents."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        runtimes: RuntimeRegistry,
        backends: Mapping[str, Backend],
        settings: FleetSettings,
        clock: Clock,
        environ: Mapping[str, str],
        roster: Mapping[AgentName, AgentSpec] | None = None,
        heartbeats: HeartbeatIssuer | None = None,
        provider_urls: ProviderUrlIssuer | None = None,
    ) -> None:
        self._ledger = ledger
        self._heartbeats = heartbeats
        self._provider_urls = provider_urls
        self._runtimes = runtimes
        self._backends = dict(backends)
        self._settings = settings
        self._clock = clock
        self._environ = environ
        self._roster = dict(roster or {})
        self._locks: dict[AgentName, asyncio.Lock] = {}
        self._watchers: dict[AgentName, asyncio.Task[None]] = {}
        self._ending: dict[AgentName, _Ending] = {}  # agents being stopped, and why
        self._listeners: list[Listener] = []
        self._state = SupervisorState.NEW

    # -- lifecycle ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` for every :class:`FleetEvent` from now on."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Reconcile the ledger with what actually runs, then watch the live agents."""
        if self._state is not SupervisorState.NEW:
            raise RuntimeError(f"Fleet.start() called in state {self._state.value}")
        self._state = SupervisorState.RUNNING
        open_runs = {run.agent: run for run in await self._ledger.open_runs()}
        for record in await self._ledger.list_agents():
            run = open_runs.get(record.name)
            if run is not None:
                await self._reconcile_run(record, run)
            elif record.state.is_live:
                await self._ledger.set_state(
                    record.name, AgentState.FAILED, "was starting when Fleetwarden stopped"
                )
        await self._autostart(self._roster.values(), reason="autostart")

    async def _autostart(self, specs: Iterable[AgentSpec], *, reason: str) -> list[AgentName]:
        """Launch the roster's ``autostart`` agents, and agents with ``restart: always``
        that operators want running, unless they already run. Failures are logged."""
        started: list[AgentName] = []
        for spec in specs:
            record = await self._ledger.get_agent(spec.name)
            wanted = spec.autostart or (
                record is not None
                and record.desired is DesiredState.RUNNING
                and spec.restart.mode is RestartMode.ALWAYS
            )
            if not wanted or (record is not None and record.state.is_live):
                continue
            try:
                outcome = await self.spawn(spec.name, by=reason, collect=False)
            except FleetError as exc:
                log.error("could not start %s (%s): %s", spec.name, reason, exc)
                continue
            if outcome.started:
                started.append(spec.name)
        return started

    async def _reconcile_run(self, record: AgentRecord, run: RunRecord) -> None:
        backend = self._backend(run.handle.backend)
        if backend.is_alive(run.handle):
            log.info("reattached agent %s (pid %s)", record.name, run.handle.pid)
            if not record.state.is_live:
                await self._ledger.set_state(record.name, AgentState.RUNNING, "reattached")
            self._watch(record.name, run)
            return
        info = await backend.wait(run.handle)
        await self._finish_run(record.name, run, info, ending=None, notify=False)

    async def stop(self) -> None:
        """Stop watching. The agents keep running; the next start reattaches them."""
        if self._state is not SupervisorState.RUNNING:
            return
        self._state = SupervisorState.STOPPED
        watchers = list(self._watchers.values())
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        self._watchers.clear()

    # -- queries -----------------------------------------------------------------------

    async def ps(self) -> list[AgentStatus]:
        """Every agent the ledger knows, by name, with its tokens today (four queries,
        whatever the fleet size)."""
        runs = await self._ledger.last_runs()
        beats = await self._ledger.last_heartbeats()
        tokens = await self._ledger.tokens_by_agent(self.window_start("today"))
        return [
            self._status_of(
                record,
                runs.get(record.name),
                beats.get(record.name, (None, ""))[0],
                tokens_today=tokens.get(record.name, 0),
            )
            for record in await self._ledger.list_agents()
        ]

    def window_start(self, window: str) -> datetime:
        """When report window ``window`` (:data:`fleet.windows.WINDOWS`) began."""
        # The one place the report timezone is chosen: None is the host's; a configured
        # timezone goes here.
        return window_start(window, self._clock.now(), None)

    async def usage(self, since: datetime, *, agent: str | None = None) -> list[UsageTotal]:
        """Token use since ``since`` per agent and model; usage outlives its agents."""
        return await self._ledger.usage_totals(since, agent=agent)

    async def knows(self, name: str) -> bool:
        """Whether ``name`` is an agent the ledger or the roster knows."""
        return name in self._roster or await self._ledger.get_agent(name) is not None

    async def status(self, name: str) -> AgentStatus:
        return await self._status(await self._record(name))

    async def logs(self, name: str, lines: int) -> list[str]:
        """The last ``lines`` lines of the agent's output (across its runs)."""
        record = await self._record(name)
        return await asyncio.to_thread(tail_lines, self._log_path(record.name), lines)

    def roster(self) -> list[AgentSpec]:
        """The roster agents, by name."""
        return [self._roster[name] for name in sorted(self._roster)]

    async def apply_roster(self, roster: Mapping[AgentName, AgentSpec]) -> RosterDiff:
        """Adopt a new roster without touching running agents; start new autostart ones."""
        old, self._roster = self._roster, dict(roster)
        changed = tuple(sorted(n for n in old.keys() & roster.keys() if old[n] != roster[n]))
        running = []
        for name in changed:
            record = await self._ledger.get_agent(name)
            if record is not None and record.state.is_live:
                running.append(name)
            elif record is not None:
                await self._ledger.upsert_agent(roster[name], record.desired)
        added = tuple(sorted(roster.keys() - old.keys()))
        started = await self._autostart(
            [roster[n] for n in added], reason="autostart after roster reload"
        )
        return RosterDiff(
            added=added,
            removed=tuple(sorted(old.keys() - roster.keys())),
            changed=changed,
            changed_running=tuple(running),
            started=tuple(started),
        )

    async def snapshot(self, name: str) -> str:
        """What the agent's screen shows now (the log's end once it has stopped)."""
        record = await self._record(name)
        run = await self._ledger.last_run(record.name)
        if record.state.is_live and run is not None and run.ended_at is None:
            return await self._backend(run.handle.backend).snapshot(run.handle)
        return "\n".join(tail_lines(self._log_path(record.name), 40))

    async def drift(self) -> list[str]:
        """Sessions on our backends that no run in the ledger accounts for: reported,
        never killed (an operator may have started them by hand)."""
        known = {run.handle.session for run in await self._ledger.open_runs()}
        found: set[str] = set()
        for backend in self._backends.values():
            found |= await backend.sessions()
        return sorted(found - known)

    # -- control -----------------------------------------------------------------------

    async def spawn(
        self,
        name: str,
        *,
        runtime: str | None = None,
        model: str | None = None,
        prompt: str | None = None,
        workdir: Path | None = None,
        by: str = "operator",
        collect: bool = True,
    ) -> SpawnOutcome:
        """Start the agent unless it already runs. Idempotent. With ``collect``, wait
        briefly for its first output to include in the outcome."""
        agent = agent_name(name)
        async with self._lock(agent):
            existing = await self._ledger.get_agent(agent)
            if existing is not None and existing.state.is_live:
                return SpawnOutcome(await self._status(existing), started=False)
            base = self._roster.get(agent) or (existing.spec if existing else None)
            spec = base or AgentSpec(
                name=agent,
                runtime=self._settings.default_runtime,
                backend=self._settings.default_backend,
            )
            spec = replace(
                spec,
                runtime=runtime or spec.runtime,
                model=model if model is not None else spec.model,
                prompt=prompt if prompt is not None else spec.prompt,
                workdir=workdir if workdir is not None else spec.workdir,
            )
            offset = await self._launch(spec, reason=f"spawned by {by}")
            output = await self._collect_reply(self._log_path(agent), offset) if collect else []
            return SpawnOutcome(await self.status(agent), started=True, output=tuple(output))

    async def stop_agent(self, name: str, *, force: bool = False, by: str = "operator") -> ExitInfo:
        """Stop the agent's whole process group; record it as stopped by an operator."""
        record = await self._record(name)
        async with self._lock(record.name):
            await self._ledger.set_desired(record.name, DesiredState.STOPPED)
            return await self._stop_run(record.name, force=force, reason=f"stopped by {by}")

    async def restart(self, name: str, *, by: str = "operator") -> AgentStatus:
        """Stop the agent if it runs, then launch it again with the same spec."""
        record = await self._record(name)
        async with self._lock(record.name):
            # Read again under the lock: a spawn or stop may have run while we waited for it.
            record = await self._record(name)
            if record.state.is_live:
                await self._stop_run(record.name, force=False, reason=f"restarted by {by}")
            # The roster's current settings apply on restart (after a `roster reload`).
            spec = self._roster.get(record.name, record.spec)
            await self._launch(spec, reason=f"restarted by {by}")
        return await self.status(record.name)

    async def send(self, name: str, text: str, *, by: str = "operator") -> list[str]:
        """Give the agent more work; return the output it wrote in reply (collected for up
        to ``reply_wait`` seconds, ending early when it goes quiet).

        Agents that read their input (the stub, a TUI in tmux) get ``text`` typed in. A
        headless CLI run has ended by the time it answered; its runtime then plans a new
        run that resumes the session with ``text`` (``claude -p TEXT --resume ID``)."""
        record = await self._record(name)
        async with self._lock(record.name):
            record = await self._record(name)
            log_path = self._log_path(record.name)
            ctx = self._context(record.spec)
            runtime = self._runtimes.get(record.spec.runtime)
            session = runtime.session_id("\n".join(tail_lines(log_path, 500)))
            plan = runtime.follow_up(record.spec, ctx, session, text)
            if plan is not None:
                if record.state.is_live:
                    raise AgentNotRunning(
                        f"{record.name} is still working on its last prompt; wait for it to "
                        f"finish (`logs {record.name}`) or stop it"
                    )
                offset = await self._launch(record.spec, reason=f"follow-up from {by}", plan=plan)
            else:
                run = await self._ledger.last_run(record.name)
                if not record.state.is_live or run is None or run.ended_at is not None:
                    raise AgentNotRunning(
                        f"{record.name} is {record.state.value}, not running — spawn it first"
                    )
                offset = size_of(log_path)
                await self._backend(run.handle.backend).send_input(run.handle, text)
        return await self._collect_reply(log_path, offset)

    # -- the watchdog (fleet.watchdog decides; this carries it out) ------------------

    async def watchdog_snapshot(self) -> WatchdogSnapshot:
        """Every agent as the watchdog's :class:`AgentView`, with ``now``."""
        beats = await self._ledger.last_heartbeats()
        runs = await self._ledger.last_runs()
        views = []
        for record in await self._ledger.list_agents():
            run = runs.get(record.name)
            alive = None
            if run is not None and run.ended_at is None and run.handle.backend in self._backends:
                alive = self._backend(run.handle.backend).is_alive(run.handle)
            beat = beats.get(record.name)
            kind: HeartbeatKind = "beat"
            if beat is not None and beat[1] in ("working", "waiting"):
                kind = "working" if beat[1] == "working" else "waiting"
            views.append(
                AgentView(
                    name=record.name,
                    spec=self._roster.get(record.name, record.spec),
                    state=record.state,
                    desired=record.desired,
                    process_alive=alive,
                    run_started_at=run.started_at if run is not None else None,
                    last_heartbeat=beat[0] if beat is not None else None,
                    last_heartbeat_kind=kind if beat is not None else None,
                    last_output_at=mtime(self._log_path(record.name)),
                    exit_code=run.exit_code if run is not None else None,
                    ended_by_operator=record.state is AgentState.STOPPED,
                    restarts_in_a_row=record.restarts_in_a_row,
                    last_restart_at=record.last_restart_at,
                    next_restart_at=record.next_restart_at,
                )
            )
        defaults = WatchdogDefaults(heartbeat_timeout=self._settings.heartbeat_timeout)
        return WatchdogSnapshot(tuple(views), self._clock.now(), defaults)

    async def apply_watchdog(self, actions: Sequence[Action]) -> None:
        """Carry out the watchdog's decisions (see :mod:`fleet.watchdog`)."""
        for action in actions:
            try:
                await self._apply(action)
            except FleetError as exc:
                log.error("watchdog: %s for %s failed: %s", type(action).__name__, action.name, exc)

    async def _apply(self, action: Action) -> None:
        name, now = action.name, self._clock.now()
        record = await self._record(name)
        match action:
            case MarkStalled(reason=reason):
                await self._ledger.set_state(name, AgentState.STALLED, reason)
                await self._emit(
                    FleetEvent(name, EventKind.STALLED, AgentState.STALLED, reason, False)
                )
            case MarkIdle(reason=reason):
                await self._ledger.set_state(name, AgentState.IDLE, reason)
            case MarkRunning(reason=reason):
                await self._ledger.set_state(name, AgentState.RUNNING, reason)
            case MarkEnded():
                run = await self._ledger.last_run(name)
                if run is not None and run.ended_at is None:
                    info = await self._backend(run.handle.backend).wait(run.handle)
                    await self._finish_run(name, run, info, ending=None)
            case KillForTimeout(reason=reason):
                async with self._lock(name):
                    ending = _Ending(AgentState.FAILED, reason, by_operator=False)
                    with contextlib.suppress(AgentNotRunning):
                        await self._stop_run(name, force=False, reason=reason, ending=ending)
            case ScheduleRestart(at=at):
                await self._ledger.set_restarts(
                    name,
                    in_a_row=record.restarts_in_a_row,
                    last_at=record.last_restart_at,
                    next_at=at,
                )
            case CancelRestart():
                await self._ledger.set_restarts(
                    name,
                    in_a_row=record.restarts_in_a_row,
                    last_at=record.last_restart_at,
                    next_at=None,
                )
            case ResetRestarts():
                await self._ledger.set_restarts(
                    name, in_a_row=0, last_at=record.last_restart_at, next_at=None
                )
            case GiveUp(reason=reason):
                await self._ledger.set_restarts(
                    name,
                    in_a_row=record.restarts_in_a_row,
                    last_at=record.last_restart_at,
                    next_at=None,
                )
                await self._ledger.set_desired(name, DesiredState.STOPPED)
                await self._emit(FleetEvent(name, EventKind.GAVE_UP, record.state, reason, False))
            case Restart(attempt=attempt, reason=reason):
                async with self._lock(name):
                    record = await self._record(name)
                    if record.state.is_live:
                        ending = _Ending(AgentState.FAILED, reason, by_operator=False)
                        with contextlib.suppress(AgentNotRunning):
                            await self._stop_run(name, force=False, reason=reason, ending=ending)
                    await self._ledger.set_restarts(
                        name, in_a_row=attempt, last_at=now, next_at=None
                    )
                    spec = self._roster.get(name, record.spec)
                    await self._launch(spec, reason=f"restart {attempt} by the watchdog: {reason}")
                await self._emit(
                    FleetEvent(
                        name,
                        EventKind.RESTARTED,
                        AgentState.RUNNING,
                        f"restart {attempt} of {spec.restart.max_restarts} ({reason})",
                        False,
                    )
                )

    # -- internals ---------------------------------------------------------------------

    def _context(self, spec: AgentSpec) -> RuntimeContext:
        """Where and how ``spec`` runs: its private home, its directory, its URLs."""
        paths = AgentPaths.of(self._settings.state_dir, spec.name)
        workdir = spec.workdir or paths.work
        for path in (paths.home, workdir):
            path.mkdir(parents=True, exist_ok=True)
        beats = self._heartbeats
        return RuntimeContext(
            home=paths.home,
            workdir=workdir,
            environ=self._environ,
            tty=self._backend(spec.backend).tty,
            provider_urls=(
                self._provider_urls.urls_for(spec.name)
                if self._provider_urls is not None
                else self._settings.provider_urls
            ),
            heartbeat_url=beats.url_for(spec.name) if beats is not None else None,
            heartbeat_token=beats.token_for(spec.name) if beats is not None else None,
        )

    async def _launch(self, spec: AgentSpec, *, reason: str, plan: LaunchPlan | None = None) -> int:
        """Start ``spec`` (or a runtime's ``plan`` for it, e.g. a resumed session); return
        the log offset where the new process's output begins."""
        runtime = self._runtimes.get(spec.runtime)
        backend = self._backend(spec.backend)
        paths = AgentPaths.of(self._settings.state_dir, spec.name)
        if plan is None:
            plan = runtime.plan(spec, self._context(spec))
        write_files(paths.home, plan.files)
        await self._ledger.upsert_agent(spec, DesiredState.RUNNING)
        await self._ledger.set_state(spec.name, AgentState.STARTING, reason)
        append_marker(paths.log, f"{spec.name} starting ({spec.runtime})")
        offset = size_of(paths.log)
        try:
            handle = await backend.launch(plan, paths.new_run_dir(self._clock.now()), paths.log)
        except LaunchFailed as exc:
            await self._ledger.set_state(spec.name, AgentState.FAILED, str(exc))
            raise
        run = await self._ledger.start_run(spec.name, handle)
        await self._ledger.set_state(spec.name, AgentState.RUNNING, f"pid {handle.pid}")
        self._watch(spec.name, run)
        await self._emit(
            FleetEvent(spec.name, EventKind.STARTED, AgentState.RUNNING, reason, by_operator=True)
        )
        return offset

    async def _stop_run(
        self, name: AgentName, *, force: bool, reason: str, ending: _Ending | None = None
    ) -> ExitInfo:
        """End the current run. By default as an operator's stop (state ``stopped``, no
        notice); ``ending`` says otherwise (e.g. the watchdog's timeout kill)."""
        ending = ending or _Ending(AgentState.STOPPED, reason, by_operator=True)
        run = await self._ledger.last_run(name)
        if run is None or run.ended_at is not None:
            record = await self._record(name)
            if record.state.is_live:
                await self._ledger.set_state(name, ending.state, reason)
            raise AgentNotRunning(f"{name} is not running")
        self._ending[name] = ending
        try:
            info = await self._backend(run.handle.backend).stop(
                run.handle, grace=self._settings.stop_grace, force=force
            )
            watcher = self._watchers.get(name)
            if watcher is not None:
                await asyncio.shield(watcher)
            else:
                await self._finish_run(name, run, info, ending=ending)
            return info
        finally:
            self._ending.pop(name, None)

    def _watch(self, name: AgentName, run: RunRecord) -> None:
        task = asyncio.create_task(self._watcher(name, run), name=f"watch-{name}")
        self._watchers[name] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._watchers.get(name) is done:
                del self._watchers[name]

        task.add_done_callback(forget)

    async def _watcher(self, name: AgentName, run: RunRecord) -> None:
        info = await self._backend(run.handle.backend).wait(run.handle)
        await self._finish_run(name, run, info, ending=self._ending.get(name))

    async def _finish_run(
        self,
        name: AgentName,
        run: RunRecord,
        info: ExitInfo,
        *,
        ending: _Ending | None,
        notify: bool = True,
    ) -> None:
        """Record how a run ended: by itself (exited/failed by its status), or as
        ``ending`` says. Operators hear of it unless they asked for it themselves.
        ``desired`` is left alone: the restart policy decides what follows an end."""
        await self._ledger.end_run(run.id, info)
        if ending is not None:
            state, reason = ending.state, f"{ending.reason} ({info.reason})"
        else:
            state = AgentState.EXITED if info.exit_code == 0 else AgentState.FAILED
            reason = info.reason
        await self._ledger.set_state(name, state, reason)
        append_marker(self._log_path(name), f"{name} {info.reason}")
        by_operator = ending is not None and ending.by_operator
        if notify and not by_operator:
            await self._emit(FleetEvent(name, EventKind.ENDED, state, reason, by_operator=False))

    async def _emit(self, event: FleetEvent) -> None:
        for listener in list(self._listeners):
            try:
                await listener(event)
            except Exception:
                log.exception("fleet event listener failed for %s", event.agent)

    async def _collect_reply(self, log_path: Path, offset: int) -> list[str]:
        return await collect_output(
            log_path, offset, wait=self._settings.reply_wait, quiet=self._settings.reply_quiet
        )

    async def _status(self, record: AgentRecord) -> AgentStatus:
        run = await self._ledger.last_run(record.name)
        return self._status_of(record, run, await self._ledger.last_heartbeat(record.name))

    def _status_of(
        self,
        record: AgentRecord,
        run: RunRecord | None,
        heartbeat: datetime | None,
        *,
        tokens_today: int | None = None,
    ) -> AgentStatus:
        activity = latest(heartbeat, mtime(self._log_path(record.name)))
        return AgentStatus(
            name=record.name,
            runtime=record.spec.runtime,
            backend=record.spec.backend,
            model=record.spec.model,
            state=record.state,
            reason=record.state_reason,
            pid=run.handle.pid if run is not None and run.ended_at is None else None,
            started_at=run.started_at if run is not None else None,
            ended_at=run.ended_at if run is not None else None,
            exit_code=run.exit_code if run is not None else None,
            last_activity=activity,
            last_heartbeat=heartbeat,
            tokens_today=tokens_today,
        )

    async def _record(self, name: str) -> AgentRecord:
        record = await self._ledger.get_agent(agent_name(name))
        if record is None:
            raise UnknownAgent(
                f"no agent named {name!r} — `ps` lists them, `spawn {name}` starts one"
            )
        return record

    def _backend(self, name: str) -> Backend:
        try:
            return self._backends[name]
        except KeyError:
            raise FleetError(
                f"unknown backend {name!r}; known: {', '.join(self._backends)}"
            ) from None

    def _lock(self, name: AgentName) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _log_path(self, name: AgentName) -> Path:
        return AgentPaths.of(self._settings.state_dir, name).log
