"""The fleet's live sessions: a :class:`~fleet.sessions.driver.SessionDriver` per live run.

The run keeper tells this service of each run it launches with a session protocol
(:meth:`LiveSessions.started`), each one it finds still running after a restart
(:meth:`LiveSessions.reattached`) and each end (:meth:`LiveSessions.ended`). The protocol a
run speaks is kept in its run directory (``session``), so a restarted Fleetwarden knows it
without planning the run again. The service is the deliverer of every protocol's channel
on the :class:`~fleet.approvals.service.Approvals`: an answer goes to the driver of the run
that asked. Each end of a live session's turn is a fleet event
(:attr:`~fleet.events.EventKind.TURN_OVER`), told through the fleet's listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from fleet.approvals.service import Approvals
from fleet.backends.base import Backend
from fleet.errors import AgentNotRunning, UnknownAgent
from fleet.events import EventKind, FleetEvent, Listener
from fleet.ledger.records.approvals import ApprovalRequest
from fleet.ledger.records.rows import RunRecord
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.heartbeats import HeartbeatsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.model import AgentSpec, AgentState, ExitInfo, PermissionMode
from fleet.names import AgentName
from fleet.notices import starter
from fleet.sessions.driver import DriverSetup, SessionDriver
from fleet.sessions.hook_asks import HookAsks
from fleet.sessions.protocols import PROTOCOLS, protocol_for
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

PROTOCOL_FILE = "session"  # in a run's directory: the protocol the run speaks

BackendOf = Callable[[str], Backend]


class LiveSessions:
    """The drivers of the fleet's live runs, by agent."""

    def __init__(
        self,
        *,
        agents: AgentsStore,
        heartbeats: HeartbeatsStore,
        runs: RunsStore,
        clock: Clock,
        backend_of: BackendOf,
        emit: Listener,
        approvals: Approvals | None = None,
        poll: float | None = None,
    ) -> None:
        """``emit``: tells the fleet's listeners of each turn's end."""
        self._heartbeats = heartbeats
        self._runs = runs
        self._clock = clock
        self._backend_of = backend_of
        self._approvals = approvals
        self._poll = poll
        self._drivers: dict[AgentName, SessionDriver] = {}
        self._emit = emit
        # The asks of CLIs on a terminal, through their permission hooks.
        self.hook_asks = HookAsks(agents, heartbeats, runs, approvals)

    async def start(self) -> None:
        """Be the deliverer of every session protocol's answers."""
        if self._approvals is not None:
            for channel in PROTOCOLS:
                await self._approvals.register(channel, self._deliver)
        await self.hook_asks.start()

    async def stop(self) -> None:
        """Stop following; the sessions run on, to be reattached by the next start."""
        drivers, self._drivers = list(self._drivers.values()), {}
        for driver in drivers:
            await driver.detach()

    def driver(self, name: AgentName) -> SessionDriver | None:
        """The driver of ``name``'s live run, if it has one."""
        return self._drivers.get(name)

    # -- the run keeper's news ---------------------------------------------------------

    async def started(
        self, spec: AgentSpec, run: RunRecord, *, protocol: str, prompt: str | None, offset: int
    ) -> None:
        """Run ``run`` of ``spec`` was launched speaking ``protocol``: open its session."""
        try:
            await self._started(spec, run, protocol, prompt, offset)
        except Exception:  # the run goes on; it is reported, not lost
            log.exception("could not drive the session of %s (run %s)", spec.name, run.id)

    async def _started(
        self, spec: AgentSpec, run: RunRecord, protocol: str, prompt: str | None, offset: int
    ) -> None:
        _write_protocol(run.handle.run_dir, protocol)
        start = await self._runs.run_start(run.id)
        trigger = start.trigger if start is not None else None
        cwd = Path(start.workdir) if start is not None and start.workdir else Path.cwd()
        driver = self._driver(spec, run, protocol, offset, cwd, trigger)
        self._drivers[spec.name] = driver
        await driver.begin(prompt)

    async def reattached(self, spec: AgentSpec, run: RunRecord) -> None:
        """Run ``run`` kept running while Fleetwarden restarted: drive its session again,
        if it has one."""
        try:
            await self._reattached(spec, run)
        except Exception:  # the other agents are reattached all the same
            log.exception("could not drive the session of %s (run %s)", spec.name, run.id)

    async def _reattached(self, spec: AgentSpec, run: RunRecord) -> None:
        protocol = _read_protocol(run.handle.run_dir)
        start = await self._runs.run_start(run.id)
        if protocol is None or start is None:
            return
        cwd = Path(start.workdir) if start.workdir else Path.cwd()
        driver = self._driver(spec, run, protocol, start.log_offset, cwd, start.trigger)
        self._drivers[spec.name] = driver
        await driver.resume()

    async def ended(self, name: AgentName, run: RunRecord, info: ExitInfo, why: str) -> None:
        """Run ``run`` ended: its driver stops; its asks still open close, saying why."""
        driver = self._drivers.get(name)
        if driver is None or driver.setup.run_id != run.id:
            if self._approvals is not None:  # a run whose session was never driven here
                await self._approvals.close_run(run.id, _closed_why(info, why))
            return
        del self._drivers[name]
        await driver.close(_closed_why(info, why))

    # -- control -----------------------------------------------------------------------

    async def took(self, name: AgentName, text: str, *, wait: float = 30.0) -> bool:
        """Give ``name``'s live session a turn (now, or after the turn in progress);
        whether it took it. Not when ``name`` has no live session, nor when its process is
        ending: then this returns once it has ended (at most ``wait`` seconds), for the
        caller to resume the session in a new process."""
        driver = self._drivers.get(name)
        if driver is None:
            return False
        if not driver.closing:
            await driver.turn(text)
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(driver.gone.wait(), wait)
        return False

    async def interrupt(self, name: AgentName) -> bool:
        """End ``name``'s turn in progress; whether there was one."""
        return await self._live(name).interrupt()

    async def set_mode(self, name: AgentName, mode: PermissionMode) -> bool:
        """Change ``name``'s permission mode in its running session; whether it could."""
        driver = self._drivers.get(name)
        return driver is not None and await driver.set_mode(mode)

    # -- inside ------------------------------------------------------------------------

    def _live(self, name: AgentName) -> SessionDriver:
        driver = self._drivers.get(name)
        if driver is None:
            raise AgentNotRunning(f"{name} has no live session")
        return driver

    def _driver(
        self,
        spec: AgentSpec,
        run: RunRecord,
        protocol: str,
        offset: int,
        cwd: Path,
        trigger: str | None,
    ) -> SessionDriver:
        backend = self._backend_of(run.handle.backend)
        handle = run.handle

        async def write(line: str) -> None:
            await backend.send_input(handle, line)

        async def beat(state: str) -> None:
            with contextlib.suppress(UnknownAgent):  # forgotten meanwhile
                await self._heartbeats.record_heartbeat(spec.name, state)

        async def turn_over(waits: bool) -> None:
            state = AgentState.IDLE if waits else AgentState.RUNNING
            why = "its turn is over" + ("" if waits else "; it goes on")
            await self._emit(FleetEvent(spec.name, EventKind.TURN_OVER, state, why, False, run.id))

        setup = DriverSetup(spec.name, run.id, spec, run.handle.log_path, offset, starter(trigger))
        extra = {} if self._poll is None else {"poll": self._poll}
        return SessionDriver(
            setup,
            protocol_for(protocol, spec, cwd),
            write=write,
            beat=beat,
            clock=self._clock,
            approvals=self._approvals,
            turn_over=turn_over,
            **extra,
        )

    async def _deliver(self, request: ApprovalRequest) -> None:
        for driver in self._drivers.values():
            if driver.setup.run_id == request.run_id and driver.channel == request.channel:
                await driver.deliver(request)
                return
        raise AgentNotRunning(f"run {request.run_id} of {request.agent} has no live session")


def _closed_why(info: ExitInfo, why: str) -> str:
    return f"its CLI ended while asking ({why or info.reason})"


def _write_protocol(run_dir: Path, protocol: str) -> None:
    path = run_dir / PROTOCOL_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(protocol + "\n")


def _read_protocol(run_dir: Path) -> str | None:
    try:
        with open(run_dir / PROTOCOL_FILE, encoding="utf-8") as fh:
            name = fh.read(128).strip()
    except OSError:
        return None
    return name if name in PROTOCOLS else None
