"""The postbox's rig: a fleet of four agents over a real ledger — ``coder`` talks to
``reviewer`` and ``helper``; ``reviewer`` waits to be run (``wake: wait``), ``helper`` is
started by a message (``wake: start``), ``loner`` talks to nobody — whose ``send`` takes a
message into a running agent (or says it is still working, or not running), and whose
``spawn`` (the admission's launch) records a run in the ledger as the keeper does; and the
peer door served over it (:func:`serve_door`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from fleet.clock import ManualClock
from fleet.connections.loopback import AgentSecrets
from fleet.errors import AgentNotRunning, LaunchFailed, UnknownAgent
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger
from fleet.ledger.stores.running.runs import RunReport, RunStart
from fleet.model import AgentSpec, AgentState, DesiredState, ExitInfo, RunHandle
from fleet.names import AgentName
from fleet.peers.door import PeerDesk, PeerDoor
from fleet.peers.handoff import Handoff
from fleet.peers.postbox import Postbox
from fleet.peers.roster import PeerRoster
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.status import AgentStatus, SpawnOutcome
from fleet.tasks.register import Register
from fleet.tasks.runs import TaskRuns
from tests.fakes.launches import an_admission, given_of
from tests.unit.chat_fakes import T0

SECRET = "hunter2-very-secret"


def spec(name: str, **given: Any) -> AgentSpec:
    return replace(AgentSpec(AgentName(name), "claude"), **given)


def roster() -> dict[str, AgentSpec]:
    return {
        "coder": spec(
            "coder", talks_to=(AgentName("reviewer"), AgentName("helper")), messages_per_hour=5
        ),
        "reviewer": spec("reviewer", talks_to=(AgentName("coder"),), wake="wait"),
        "helper": spec("helper", runtime="codex", host="box", wake="start"),
        "loner": spec("loner"),
    }


def redact(text: str) -> str:
    return text.replace(SECRET, "[REDACTED]")


@dataclass
class FakeFleet:
    """The fleet as the postbox and the admission reach it."""

    ledger: Ledger
    tmp_path: Path
    specs: dict[str, AgentSpec] = field(default_factory=roster)
    task_runs: TaskRuns | None = None
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    busy: set[str] = field(default_factory=set)  # still working on their last prompt
    spawned: list[tuple[str, str | None, str]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)  # each launch's, in order
    listeners: list[Any] = field(default_factory=list)
    cannot_launch: str | None = None  # the launch fails, saying this
    removed: set[str] = field(default_factory=set)  # taken out of the roster, still known

    async def knows(self, name: str) -> bool:
        return name in self.specs

    async def spec(self, name: str) -> AgentSpec:
        if name not in self.specs:
            raise UnknownAgent(f"no agent named {name}")
        return self.specs[name]

    def roster(self) -> list[AgentSpec]:
        return [spec for name, spec in self.specs.items() if name not in self.removed]

    async def send(self, name: str, text: str, *, by: str = "operator") -> RunReport | None:
        if name in self.busy:
            raise AgentNotRunning(f"{name} is still working on its last prompt")
        if not await self.running(name):
            raise AgentNotRunning(f"{name} is exited, not running — spawn it first")
        self.sent.append((name, text, by))
        return None

    async def fallback_of(self, name: str) -> None:
        return None

    async def spawn(self, request: LaunchRequest) -> SpawnOutcome:
        name, given = request.agent, given_of(request)
        if self.cannot_launch is not None:
            raise LaunchFailed(self.cannot_launch)
        started = not await self.running(name)
        if started:
            self.spawned.append((name, given.get("prompt"), given.get("by", "")))
            self.origins.append(request.origin)
            await self.launch(name)
        status = AgentStatus(
            AgentName(name), "claude", "subprocess", None, AgentState.RUNNING, "", 7, T0, None,
            None, None,
        )  # fmt: skip
        return SpawnOutcome(status, started=started, pid=7)

    async def running(self, name: str) -> bool:
        run = await self.ledger.runs.last_run(name)
        return run is not None and run.ended_at is None

    async def launch(self, name: str) -> int:
        await self.ledger.agents.upsert_agent(self.specs[name], DesiredState.RUNNING)
        handle = RunHandle("subprocess", 1, 1, self.tmp_path / name, self.tmp_path / "log")
        run = await self.ledger.runs.start_run(name, handle)
        await self.ledger.runs.record_run_start(run, RunStart("test", (), None, None, 0))
        await self.emit(name, EventKind.STARTED, run.id)
        return run.id

    async def end(self, name: str) -> None:
        run = await self.ledger.runs.last_run(name)
        assert run is not None
        await self.ledger.runs.end_run(run.id, ExitInfo(0, "exited"))
        await self.emit(name, EventKind.ENDED, run.id)

    async def emit(self, name: str, kind: EventKind, run_id: int) -> None:
        event = FleetEvent(AgentName(name), kind, AgentState.RUNNING, "", False, run_id)
        if self.task_runs is not None:
            await self.task_runs.hear(event)
        for listener in self.listeners:
            await listener(event)


def postbox_over(ledger: Ledger, fleet: FakeFleet, clock: ManualClock, **given: Any) -> Postbox:
    """A postbox over ``fleet``, its launches through a real admission of no caps, that
    hears the fleet's runs start and end."""
    postbox = Postbox(
        messages=ledger.messages,
        runs=ledger.runs,
        fleet=fleet,
        admission=an_admission(fleet, slots=None, budgets=None, tasks=fleet.task_runs),
        redact=redact,
        clock=clock,
        **given,
    )
    fleet.listeners.append(postbox.hear)
    return postbox


@dataclass
class FakeVerdicts:
    """The review desk: records each verdict, answers with a line."""

    given: list[tuple[str, bool, str]] = field(default_factory=list)

    async def verdict(self, reviewer: str, approve: bool, text: str) -> str:
        self.given.append((reviewer, approve, text))
        return "approved: the pull request is ready for review" if approve else "changes asked"


@dataclass
class DoorRig:
    """A peer door listening on ``port`` over a real postbox; ``up``: whether the fleet
    is (until then the door answers 503)."""

    port: int
    tokens: dict[str, str]
    fleet: FakeFleet
    postbox: Postbox
    verdicts: FakeVerdicts
    asked: list[bool]  # [whether a review is asked]
    up: list[bool]
    desk: PeerDesk

    def url(self, agent: str) -> str:
        return f"http://127.0.0.1:{self.port}/msg/{agent}"

    def heartbeat_url(self, agent: str) -> str:
        return f"http://127.0.0.1:{self.port}/heartbeat/{agent}"


@asynccontextmanager
async def serve_door(ledger: Ledger, tmp_path: Path, clock: ManualClock) -> AsyncIterator[DoorRig]:
    """The peer door for the rig's agents on 127.0.0.1 until the block ends."""
    task_runs = TaskRuns(
        tasks=ledger.tasks,
        actuals=ledger.actuals,
        runs=ledger.runs,
        lines=ledger.lines,
        spawn_queue=ledger.spawn_queue,
    )
    fleet = FakeFleet(ledger, tmp_path, task_runs=task_runs)
    postbox = postbox_over(ledger, fleet, clock)
    register = Register(
        tasks=ledger.tasks,
        missions=ledger.missions,
        actuals=ledger.actuals,
        runs=task_runs,
        admission=an_admission(fleet, slots=None, budgets=None, tasks=task_runs),
    )
    handoff = Handoff(postbox=postbox, register=register, tasks=ledger.tasks, runs=ledger.runs)
    verdicts, asked, up = FakeVerdicts(), [False], [True]
    roster = PeerRoster(
        roster=lambda: fleet.specs.values(), agents=ledger.agents, state_dir=tmp_path / "state"
    )
    await roster.refresh()
    desk = PeerDesk(postbox, handoff, roster.peers_text, lambda: verdicts if asked[0] else None)
    secrets = AgentSecrets(tmp_path / "heartbeat.json", "heartbeat endpoint")
    tokens = {name: secrets.issue(name) for name in fleet.specs}
    app = web.Application()
    PeerDoor(lambda: desk if up[0] else None).mount(app, secrets)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = cast(tuple[str, int], runner.addresses[0])[1]
        yield DoorRig(port, tokens, fleet, postbox, verdicts, asked, up, desk)
    finally:
        await postbox.stop()
        await runner.cleanup()
