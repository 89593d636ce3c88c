"""A ``spawn`` that a queued budget turns away: deferred to when the queue should clear
(kept in the ledger's spawn queue), or refused with why; and the job that sweeps the queue."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.acl import Role
from bot.commands.errors import CommandError
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.spawn.launching import Launching
from bot.commands.handlers.launches.spawn_queue import SpawnQueue
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Reply, Request
from bot.commands.specs import COMMANDS
from fleet.budgets.model import Groups
from fleet.caps import Caps
from fleet.ledger import Ledger
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.fleet import FleetSettings
from fleet.timing.clock import ManualClock
from scheduler.queue_job import sweep_spawn_queue
from tests.fakes.doubles.budget_book import StaticBook
from tests.fakes.doubles.job_context import job_context
from tests.fakes.doubles.launches import an_admission, real_fleet
from tests.fakes.doubles.spawn_queues import a_spawn_queue
from tests.fakes.doubles.stores import fleet_stores
from tests.unit.bot.commands.test_report_commands import handlers as report_handlers
from tests.unit.bot.render.test_report import BERLIN, NOW
from tests.unit.chat_fakes import OPERATOR, T0, message

QUEUED_UNTIL = T0 + timedelta(hours=2)


class QueuedBook(StaticBook):
    """A book whose budget queues ``coder-1`` and turns its launches away."""

    def queued_until(self, agent: str) -> datetime | None:
        return QUEUED_UNTIL if agent == "coder-1" else None

    async def admit_spawn(self, agent: str, *, urgent: bool) -> tuple[bool, str]:
        if agent == "coder-1":
            return False, "agent:coder-1 is queued until 14:00: launch deferred"
        return False, "agent:other: ~9,000 tokens expected, 100 fit the pace now"


def a_queue(ledger: Ledger, tmp_path: Path) -> SpawnQueue:
    return a_spawn_queue(
        ledger=ledger,
        fleet=real_fleet(
            stores=fleet_stores(ledger),
            clock=ManualClock(T0),
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={},
                settings=FleetSettings(state_dir=tmp_path),
                environ={},
            ),
        ),
        caps=Caps(),
        groups=Groups(),
        accounts=None,
        clock=ManualClock(T0),
        default_runtime="stub",
        host="host-a",
        budgets=QueuedBook([], BERLIN, NOW),
    )


def handlers(ledger: Ledger, tmp_path: Path, queue: SpawnQueue | None = None) -> Handlers:
    made = report_handlers(ledger, tmp_path, QueuedBook([], BERLIN, NOW), None)
    if queue is None:
        return made
    return Handlers(
        fleet=made._fleet,
        clock=ManualClock(T0),
        launching=Launching(queue.admission, gate=queue),
    )


def spawn(text: str) -> Request:
    command = Grammar(COMMANDS).parse(text)
    assert command is not None
    return Request(message(text, sender=OPERATOR), Role.OPERATOR, command)


async def test_a_deferred_launch_is_kept_in_the_ledger_with_not_before(
    ledger: Ledger, tmp_path: Path
) -> None:
    """A spawn its budget queues is deferred to when the queue clears: written to the
    ledger's queue — command, request, who, where, why, not before when — and the reply
    says when it will be tried and how to cancel it."""
    queue = a_queue(ledger, tmp_path)
    text = '!spawn coder-1 --prompt "go" --runtime stub'
    why = "agent:coder-1 is queued until 14:00: launch deferred"
    reply = await handlers(ledger, tmp_path, queue).spawn(spawn(text))
    assert isinstance(reply, Reply) and reply.markdown == (
        f"Not started now: {why}. It will be tried again at 14:00 UTC, as you, here "
        "(queued as #1: `queue` lists it, `cancel 1` drops it)."
    )
    [entry] = await ledger.spawn_queue.queued_spawns("host-a")
    assert (entry.agent, entry.command, entry.sender, entry.reason) == (
        "coder-1",
        text,
        OPERATOR,
        why,
    )
    assert entry.not_before == QUEUED_UNTIL and not entry.due(T0)
    assert dict(entry.request) == {"prompt": "go", "runtime": "stub"}
    assert await queue.entries() == [entry]


async def test_a_launch_that_does_not_fit_is_refused_with_why(
    ledger: Ledger, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="not started: agent:other: ~9,000 tokens"):
        await handlers(ledger, tmp_path, a_queue(ledger, tmp_path)).spawn(spawn("!spawn other"))


class Sweeper:
    def __init__(self) -> None:
        self.sweeps = 0

    async def sweep(self) -> int:
        self.sweeps += 1
        return 2


async def test_the_job_sweeps_the_contexts_queue() -> None:
    """The spawn-queue job asks the context's queue to start what may start."""
    sweeper = Sweeper()
    assert await sweep_spawn_queue(job_context(queue=sweeper)) == 2
    assert sweeper.sweeps == 1


async def test_a_turned_away_run_starts_on_the_agents_fallback(
    ledger: Ledger, tmp_path: Path
) -> None:
    """The ladder's last step: a roster agent with a `fallback` is started on that runtime
    (with the runtime's own model) instead of waiting, and the reply says why."""
    from fleet.backends.process import SubprocessBackend
    from fleet.model import AgentSpec, Fallback
    from fleet.names import AgentName
    from fleet.runtimes import default_registry
    from fleet.supervisor.fleet import FleetSettings
    from fleet.timing.clock import SystemClock

    name = AgentName("coder-1")
    spec = AgentSpec(name, "claude", model="sonnet", prompt="hi", fallback=Fallback("stub"))
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=FleetSettings(state_dir=tmp_path),
            environ={"PATH": "/usr/bin:/bin"},
        ),
        roster={name: spec},
    )
    await fleet.start()
    try:
        book = QueuedBook([], BERLIN, NOW)
        admission = an_admission(fleet, slots=None, budgets=book)
        handlers = Handlers(fleet=fleet, clock=SystemClock(), launching=Launching(admission))
        reply = await handlers.spawn(spawn("!spawn coder-1"))
        assert isinstance(reply, Reply)
        assert "Started on its fallback, stub: agent:coder-1 is queued" in reply.markdown
        record = await ledger.agents.get_agent(name)
        assert record is not None and (record.runtime, record.model) == ("stub", None)
    finally:
        record = await ledger.agents.get_agent(name)
        if record is not None and record.state.is_live:
            await fleet.stop_agent(name, force=True)
        await fleet.stop()
