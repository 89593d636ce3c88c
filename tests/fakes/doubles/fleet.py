"""One fake supervisor for the unit tests, answering the narrow protocols its callers see
(:mod:`fleet.supervisor.interfaces`: ``FleetEvents``, ``FleetView``, ``FleetBrakes``,
``AgentControl``'s ``send``/``restart``/``roster``; the watchdog's ``WatchedFleet``) and
recording what it was asked, so a test reads it back:

* ``specs`` the roster (``spec`` of another name: :class:`UnknownAgent`); ``live`` the agents
  with a session (``status`` of another: :class:`UnknownAgent`); ``busy`` those still on their
  last prompt (a ``send`` to them, or to one not live, is refused as the fleet refuses it);
* ``sent`` each ``send`` as ``(agent, text, by)``; ``spawned`` each launch as its keywords
  (:func:`tests.fakes.doubles.launches.given_of`), ``origins`` each launch's origin, ``restarted``;
* ``subscribe``/``tell`` its listeners; ``frozen_now``/``reasons``/``stopped`` the brakes;
* ``views``/``now``/``applied`` the watchdog's snapshot and what it applied.

A launch of an agent not live is recorded and started (``launch``: nothing more here, so a
test says who is live); :class:`LedgerFleet` keeps its runs in a real ledger as the keeper
does, and tells its listeners each run's start and end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fleet.errors import AgentNotRunning, LaunchFailed, UnknownAgent
from fleet.events import EventKind, FleetEvent, Listener
from fleet.ledger import Freeze, Ledger
from fleet.ledger.stores.running.runs import RunReport, RunStart
from fleet.model import AgentSpec, AgentState, DesiredState, ExitInfo, RunHandle
from fleet.names import AgentName
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.status import AgentStatus, SpawnOutcome
from fleet.tasks.runs import TaskRuns
from fleet.transcript.story import Outcome
from fleet.watchdog.decisions import AgentView, WatchdogDefaults, WatchdogSnapshot
from fleet.watchdog.verdicts import Action
from tests.fakes.doubles.launches import given_of

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def no_runs() -> list[tuple[str, int]]:
    """The open runs of a fleet whose runs are not kept: none."""
    return []


@dataclass
class FakeFleet:
    """The supervisor as its callers see it, recorded (see the module)."""

    specs: dict[str, AgentSpec] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)  # agents with a live session
    busy: set[str] = field(default_factory=set)  # still working on their last prompt
    removed: set[str] = field(default_factory=set)  # taken out of the roster, still known
    # none kept: no stories, no open runs' ids
    outputs: Any = field(default_factory=lambda: SimpleNamespace(stories=None, open_runs=no_runs))
    cannot_launch: str | None = None  # a launch fails, saying this
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    spawned: list[dict[str, Any]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)  # each launch's, in order
    restarted: list[str] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    frozen_now: dict[str, str] = field(default_factory=dict)  # agent → budget key
    reasons: dict[str, str] = field(default_factory=dict)  # agent → why it was frozen
    stopped: list[tuple[str, str, Outcome]] = field(default_factory=list)
    views: tuple[AgentView, ...] = ()
    now: datetime = T0
    applied: list[list[Action]] = field(default_factory=list)

    # --- FleetEvents ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    async def tell(self, event: FleetEvent) -> None:
        for listener in self.listeners:
            await listener(event)

    # --- FleetView -----------------------------------------------------------------------

    async def knows(self, name: str) -> bool:
        return name in self.specs

    async def spec(self, name: str) -> AgentSpec:
        if name not in self.specs:
            raise UnknownAgent(f"no agent named {name}")
        return self.specs[name]

    def roster(self) -> list[AgentSpec]:
        return [spec for name, spec in self.specs.items() if name not in self.removed]

    async def running(self, name: str) -> bool:
        return name in self.live

    def status_of(self, name: str) -> AgentStatus:
        """``name`` running since :data:`T0` as pid 7."""
        runtime = self.specs[name].runtime if name in self.specs else "stub"
        return AgentStatus(
            AgentName(name), runtime, "subprocess", None, AgentState.RUNNING, "", 7, T0, None,
            None, None,
        )  # fmt: skip

    async def status(self, name: str) -> AgentStatus:
        if not await self.running(name):
            raise UnknownAgent(name)
        return self.status_of(name)

    async def get_agent(self, name: str) -> Any:
        """``name``'s record as far as its state, as the agents store keeps it (``None``:
        not live here): what whose an agent is reads of it."""
        return SimpleNamespace(state=AgentState.RUNNING) if name in self.live else None

    # --- AgentControl's session verbs, and the admission's launch ------------------------

    async def send(self, name: str, text: str, *, by: str = "operator") -> RunReport | None:
        if name in self.busy:
            raise AgentNotRunning(f"{name} is still working on its last prompt")
        if not await self.running(name):
            raise AgentNotRunning(f"{name} is exited, not running — spawn it first")
        self.sent.append((name, text, by))
        return None

    async def restart(self, name: str, *, by: str = "operator") -> AgentStatus:
        self.restarted.append(name)
        return self.status_of(name)

    async def fallback_of(self, name: str) -> None:
        return None

    async def spawn(self, request: LaunchRequest) -> SpawnOutcome:
        name = request.agent
        if self.cannot_launch is not None:
            raise LaunchFailed(self.cannot_launch)
        started = not await self.running(name)
        if started:
            self.spawned.append(given_of(request))
            self.origins.append(request.origin)
            await self.launch(name)
        return SpawnOutcome(self.status_of(name), started=started, pid=7)

    async def launch(self, name: str) -> int:
        """The run a launch starts: nothing here (a test says who is ``live``)."""
        return 0

    def launches(self) -> list[tuple[str, str | None, str]]:
        """Each launch as ``(agent, prompt, by)``."""
        return [(given["name"], given["prompt"], given["by"]) for given in self.spawned]

    # --- FleetBrakes ---------------------------------------------------------------------

    async def freeze(
        self, name: str, *, reason: str, budget: str = "", by: str | None = None
    ) -> bool:
        self.frozen_now[name] = budget
        self.reasons[name] = reason
        return True

    async def thaw(self, name: str) -> bool:
        return self.frozen_now.pop(name, None) is not None

    async def frozen(self) -> list[Freeze]:
        return [
            Freeze(agent, budget, self.reasons[agent], T0, "local")
            for agent, budget in self.frozen_now.items()
        ]

    async def stop_agent(
        self, name: str, *, force: bool = False, by: str = "operator",
        outcome: Outcome = Outcome.STOPPED,
    ) -> ExitInfo:  # fmt: skip
        self.stopped.append((name, by, outcome))
        return ExitInfo(0, "stopped")

    # --- WatchedFleet --------------------------------------------------------------------

    async def watchdog_snapshot(self) -> WatchdogSnapshot:
        return WatchdogSnapshot(self.views, self.now, WatchdogDefaults(heartbeat_timeout=60))

    async def apply_watchdog(self, actions: Sequence[Action]) -> None:
        self.applied.append(list(actions))


@dataclass
class LedgerFleet(FakeFleet):
    """A :class:`FakeFleet` whose runs are the ledger's: ``launch`` starts one as the keeper
    does (the agent running until ``end``), and each start and end is told to the task runs
    (``task_runs``) and the listeners."""

    ledger: Ledger | None = None
    tmp_path: Path = Path("/nonexistent")
    task_runs: TaskRuns | None = None

    @property
    def _ledger(self) -> Ledger:
        assert self.ledger is not None, "a LedgerFleet needs its ledger"
        return self.ledger

    async def running(self, name: str) -> bool:
        run = await self._ledger.runs.last_run(name)
        return run is not None and run.ended_at is None

    async def launch(self, name: str) -> int:
        await self._ledger.agents.upsert_agent(self.specs[name], DesiredState.RUNNING)
        handle = RunHandle("subprocess", 1, 1, self.tmp_path / name, self.tmp_path / "log")
        run = await self._ledger.runs.start_run(name, handle)
        await self._ledger.runs.record_run_start(run, RunStart("test", (), None, None, 0))
        await self.emit(name, EventKind.STARTED, run.id)
        return run.id

    async def end(self, name: str) -> None:
        run = await self._ledger.runs.last_run(name)
        assert run is not None
        await self._ledger.runs.end_run(run.id, ExitInfo(0, "exited"))
        await self.emit(name, EventKind.ENDED, run.id)

    async def emit(self, name: str, kind: EventKind, run_id: int) -> None:
        event = FleetEvent(AgentName(name), kind, AgentState.RUNNING, "", False, run_id)
        if self.task_runs is not None:
            await self.task_runs.hear(event)
        await self.tell(event)
