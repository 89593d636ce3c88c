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
import enum
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from fleet.backends.base import Backend
from fleet.clock import Clock
from fleet.errors import AgentNotRunning, FleetError, LaunchFailed, UnknownAgent
from fleet.ledger import Ledger
from fleet.ledger.rows import AgentRecord, RunRecord
from fleet.logtail import read_from, size_of, tail_lines
from fleet.model import AgentSpec, AgentState, DesiredState, ExitInfo
from fleet.names import AgentName, agent_name
from fleet.runtimes import RuntimeContext, RuntimeRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """The supervisor's knobs, from the config's ``defaults``."""

    state_dir: Path
    default_runtime: str = "stub"
    default_backend: str = "subprocess"
    stop_grace: float = 10.0
    reply_wait: float = 2.0  # how long `send` collects the agent's answer
    reply_quiet: float = 0.3  # ...ending early once output has been quiet this long


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


@dataclass(frozen=True, slots=True)
class SpawnOutcome:
    """What ``spawn`` did: ``started`` is false when the agent was already running."""

    status: AgentStatus
    started: bool
    output: tuple[str, ...] = ()  # what the agent wrote first, when it was started


class EventKind(enum.StrEnum):
    STARTED = "started"
    ENDED = "ended"
    REATTACHED = "reattached"


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """Something that happened to an agent that operators may want to hear about."""

    agent: AgentName
    kind: EventKind
    state: AgentState
    message: str
    by_operator: bool


Listener = Callable[[FleetEvent], Awaitable[None]]


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
    ) -> None:
        self._ledger = ledger
        self._runtimes = runtimes
        self._backends = dict(backends)
        self._settings = settings
        self._clock = clock
        self._environ = environ
        self._roster = dict(roster or {})
        self._locks: dict[AgentName, asyncio.Lock] = {}
        self._watchers: dict[AgentName, asyncio.Task[None]] = {}
        self._stopping: dict[AgentName, str] = {}  # agent -> why an operator stops it
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

    async def _reconcile_run(self, record: AgentRecord, run: RunRecord) -> None:
        backend = self._backend(run.handle.backend)
        if backend.is_alive(run.handle):
            log.info("reattached agent %s (pid %s)", record.name, run.handle.pid)
            if not record.state.is_live:
                await self._ledger.set_state(record.name, AgentState.RUNNING, "reattached")
            self._watch(record.name, run)
            return
        info = await backend.wait(run.handle)
        await self._finish_run(record.name, run, info, stop_reason=None, notify=False)

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
        """Every agent the ledger knows, by name."""
        return [await self._status(record) for record in await self._ledger.list_agents()]

    async def status(self, name: str) -> AgentStatus:
        return await self._status(await self._record(name))

    async def logs(self, name: str, lines: int) -> list[str]:
        """The last ``lines`` lines of the agent's output (across its runs)."""
        record = await self._record(name)
        return await asyncio.to_thread(tail_lines, self._log_path(record.name), lines)

    def known_names(self) -> set[str]:
        return set(self._roster)

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
    ) -> SpawnOutcome:
        """Start the agent unless it already runs. Idempotent."""
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
            output = await self._collect_reply(self._log_path(agent), offset)
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
            await self._launch(record.spec, reason=f"restarted by {by}")
        return await self.status(record.name)

    async def send(self, name: str, text: str) -> list[str]:
        """Give the agent one line of input; return the output it wrote in reply
        (collected for up to ``reply_wait`` seconds, ending early when it goes quiet)."""
        record = await self._record(name)
        run = await self._ledger.last_run(record.name)
        if not record.state.is_live or run is None or run.ended_at is not None:
            raise AgentNotRunning(
                f"{record.name} is {record.state.value}, not running — spawn it first"
            )
        log_path = self._log_path(record.name)
        offset = size_of(log_path)
        await self._backend(run.handle.backend).send_input(run.handle, text)
        return await self._collect_reply(log_path, offset)

    # -- internals ---------------------------------------------------------------------

    async def _launch(self, spec: AgentSpec, *, reason: str) -> int:
        """Start ``spec``; return the log offset where the new process's output begins."""
        runtime = self._runtimes.get(spec.runtime)
        backend = self._backend(spec.backend)
        agent_dir = self._agent_dir(spec.name)
        home = agent_dir / "home"
        workdir = spec.workdir or agent_dir / "work"
        for path in (home, workdir):
            path.mkdir(parents=True, exist_ok=True)
        plan = runtime.plan(spec, RuntimeContext(home=home, workdir=workdir, environ=self._environ))
        await self._ledger.upsert_agent(spec, DesiredState.RUNNING)
        await self._ledger.set_state(spec.name, AgentState.STARTING, reason)
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%S")
        run_dir = agent_dir / "runs" / f"{stamp}-{secrets.token_hex(3)}"
        log_path = self._log_path(spec.name)
        _append_marker(log_path, f"--- fleetwarden: {spec.name} starting ({spec.runtime}) ---")
        offset = size_of(log_path)
        try:
            handle = await backend.launch(plan, run_dir, log_path)
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

    async def _stop_run(self, name: AgentName, *, force: bool, reason: str) -> ExitInfo:
        run = await self._ledger.last_run(name)
        if run is None or run.ended_at is not None:
            record = await self._record(name)
            if record.state.is_live:
                await self._ledger.set_state(name, AgentState.STOPPED, reason)
            raise AgentNotRunning(f"{name} is not running")
        self._stopping[name] = reason
        try:
            info = await self._backend(run.handle.backend).stop(
                run.handle, grace=self._settings.stop_grace, force=force
            )
            watcher = self._watchers.get(name)
            if watcher is not None:
                await asyncio.shield(watcher)
            else:
                await self._finish_run(name, run, info, stop_reason=reason, notify=False)
            return info
        finally:
            self._stopping.pop(name, None)

    def _watch(self, name: AgentName, run: RunRecord) -> None:
        task = asyncio.create_task(self._watcher(name, run), name=f"watch-{name}")
        self._watchers[name] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._watchers.get(name) is done:
                del self._watchers[name]

        task.add_done_callback(forget)

    async def _watcher(self, name: AgentName, run: RunRecord) -> None:
        info = await self._backend(run.handle.backend).wait(run.handle)
        stop_reason = self._stopping.get(name)
        await self._finish_run(name, run, info, stop_reason=stop_reason, notify=stop_reason is None)

    async def _finish_run(
        self,
        name: AgentName,
        run: RunRecord,
        info: ExitInfo,
        *,
        stop_reason: str | None,
        notify: bool,
    ) -> None:
        """Record how a run ended. ``stop_reason`` is set when an operator ended it."""
        await self._ledger.end_run(run.id, info)
        if stop_reason is not None:
            state, reason = AgentState.STOPPED, f"{stop_reason} ({info.reason})"
        else:
            state = AgentState.EXITED if info.exit_code == 0 else AgentState.FAILED
            reason = info.reason
            await self._ledger.set_desired(name, DesiredState.STOPPED)
        await self._ledger.set_state(name, state, reason)
        _append_marker(self._log_path(name), f"--- fleetwarden: {name} {info.reason} ---")
        if notify:
            await self._emit(
                FleetEvent(
                    name, EventKind.ENDED, state, reason, by_operator=stop_reason is not None
                )
            )

    async def _emit(self, event: FleetEvent) -> None:
        for listener in list(self._listeners):
            try:
                await listener(event)
            except Exception:
                log.exception("fleet event listener failed for %s", event.agent)

    async def _collect_reply(self, log_path: Path, offset: int) -> list[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.reply_wait
        last_size, last_change = offset, loop.time()
        while loop.time() < deadline:
            await asyncio.sleep(0.05)
            size = size_of(log_path)
            now = loop.time()
            if size != last_size:
                last_size, last_change = size, now
            elif size > offset and now - last_change >= self._settings.reply_quiet:
                break
        text = read_from(log_path, offset)
        return [line for line in text.splitlines() if not line.startswith("--- fleetwarden:")]

    async def _status(self, record: AgentRecord) -> AgentStatus:
        run = await self._ledger.last_run(record.name)
        heartbeat = await self._ledger.last_heartbeat(record.name)
        activity = _latest(heartbeat, _mtime(self._log_path(record.name)))
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

    def _agent_dir(self, name: AgentName) -> Path:
        return self._settings.state_dir / "agents" / name

    def _log_path(self, name: AgentName) -> Path:
        return self._agent_dir(name) / "output.log"


def _append_marker(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text + "\n")


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError:
        return None


def _latest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None
