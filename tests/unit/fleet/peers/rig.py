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

from fleet.connections.loopback import AgentSecrets
from fleet.ledger import Ledger
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.peers.door import PeerDesk, PeerDoor
from fleet.peers.handoff import Handoff
from fleet.peers.postbox import Postbox
from fleet.peers.roster import PeerRoster
from fleet.tasks.register import Register
from fleet.tasks.runs import TaskRuns
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.fleet import LedgerFleet
from tests.fakes.doubles.launches import an_admission
from tests.fakes.doubles.stores import task_runs_of

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


def peer_fleet(ledger: Ledger, tmp_path: Path, task_runs: TaskRuns | None = None) -> LedgerFleet:
    """The rig's four agents over ``ledger``, their runs heard by ``task_runs``."""
    return LedgerFleet(specs=roster(), ledger=ledger, tmp_path=tmp_path, task_runs=task_runs)


def postbox_over(ledger: Ledger, fleet: LedgerFleet, clock: ManualClock, **given: Any) -> Postbox:
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
    fleet: LedgerFleet
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
    task_runs = task_runs_of(ledger)
    fleet = peer_fleet(ledger, tmp_path, task_runs)
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
