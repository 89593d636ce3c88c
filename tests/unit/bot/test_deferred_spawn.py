"""A ``spawn`` that a queued budget turns away: deferred to when the queue should clear,
or refused with why; and the job that runs it again."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.acl import Role
from bot.commands import COMMANDS
from bot.deferred import deferrer
from bot.errors import CommandError
from bot.grammar import Grammar
from bot.handlers import Handlers
from bot.request import Deferrer, Reply, Request
from connectors.base import InboundMessage
from fleet.ledger import Ledger
from scheduler.context import JobContext
from scheduler.deferred import DEFERRED_JOB_REF, run_deferred
from scheduler.jobs import FleetScheduler
from tests.fakes.budget_book import StaticBook
from tests.fakes.job_context import job_context
from tests.unit.bot.test_report import BERLIN, NOW
from tests.unit.bot.test_report_commands import handlers as report_handlers
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


def handlers(ledger: Ledger, tmp_path: Path, defer: Deferrer) -> Handlers:
    return report_handlers(ledger, tmp_path, QueuedBook([], BERLIN, NOW), None, defer)


def spawn(text: str) -> Request:
    command = Grammar(COMMANDS).parse(text)
    assert command is not None
    return Request(message(text, sender=OPERATOR), Role.OPERATOR, command)


async def test_a_queued_launch_is_deferred_to_when_the_queue_clears(
    ledger: Ledger, tmp_path: Path
) -> None:
    deferred: list[tuple[InboundMessage, datetime]] = []

    async def defer(msg: InboundMessage, at: datetime) -> None:
        deferred.append((msg, at))

    reply = await handlers(ledger, tmp_path, defer).spawn(spawn('!spawn coder-1 --prompt "go"'))
    assert isinstance(reply, Reply)
    assert reply.markdown.startswith("Not started now: agent:coder-1 is queued until 14:00")
    assert f"tried again at {QUEUED_UNTIL:%H:%M} UTC" in reply.markdown
    [(msg, at)] = deferred
    assert (msg.text, msg.sender, at) == ('!spawn coder-1 --prompt "go"', OPERATOR, QUEUED_UNTIL)


async def test_a_launch_that_does_not_fit_is_refused_with_why(
    ledger: Ledger, tmp_path: Path
) -> None:
    async def defer(msg: InboundMessage, at: datetime) -> None:
        raise AssertionError("nothing to wait for: not deferred")

    with pytest.raises(CommandError, match="not started: agent:other: ~9,000 tokens"):
        await handlers(ledger, tmp_path, defer).spawn(spawn("!spawn other"))


class Runner:
    def __init__(self) -> None:
        self.runs: list[dict[str, str]] = []

    async def run_deferred(
        self, *, connector: str, sender: str, room: str, text: str, job: str
    ) -> None:
        self.runs.append({"connector": connector, "sender": sender, "text": text, "job": job})


async def test_the_job_hands_the_command_to_the_contexts_runner() -> None:
    """The deferred job passes its plain-data arguments to the context's runner."""
    runner = Runner()
    await run_deferred(
        job_context(deferred=runner),
        connector="console",
        sender="console",
        room="r",
        text="spawn coder-1",
        job="deferred-1",
    )
    assert runner.runs == [
        {"connector": "console", "sender": "console", "text": "spawn coder-1", "job": "deferred-1"}
    ]


async def test_the_deferrer_arms_a_one_off_run_with_the_command_as_plain_data() -> None:
    """What the handler calls arms DEFERRED_JOB_REF at the time, with connector, sender, room
    and text as plain data, under a job id of its own."""
    scheduler: FleetScheduler[JobContext] = FleetScheduler()
    sent = message('!spawn coder-1 --prompt "go"', sender=OPERATOR)
    await deferrer(scheduler)(sent, QUEUED_UNTIL)
    [job] = scheduler.jobs()
    assert job.func_ref == DEFERRED_JOB_REF
    assert dict(job.kwargs) == {
        "connector": sent.connector,
        "sender": OPERATOR,
        "room": sent.room,
        "text": sent.text,
        "job": job.job_id,
    }
    assert job.job_id.startswith("deferred-")


async def test_a_turned_away_run_starts_on_the_agents_fallback(
    ledger: Ledger, tmp_path: Path
) -> None:
    """The ladder's last step: a roster agent with a `fallback` is started on that runtime
    (with the runtime's own model) instead of waiting, and the reply says why."""
    from fleet.backends.process import SubprocessBackend
    from fleet.clock import SystemClock
    from fleet.model import AgentSpec, Fallback
    from fleet.names import AgentName
    from fleet.runtimes import default_registry
    from fleet.supervisor import Fleet, FleetSettings

    name = AgentName("coder-1")
    spec = AgentSpec(name, "claude", model="sonnet", prompt="hi", fallback=Fallback("stub"))
    fleet = Fleet(
        ledger=ledger,
        runtimes=default_registry(),
        backends={"subprocess": SubprocessBackend()},
        settings=FleetSettings(state_dir=tmp_path),
        clock=SystemClock(),
        environ={"PATH": "/usr/bin:/bin"},
        roster={name: spec},
    )
    await fleet.start()
    try:
        book = QueuedBook([], BERLIN, NOW)
        handlers = Handlers(
            fleet=fleet, specs=COMMANDS, clock=SystemClock(), prefix="!", logs_lines=40,
            budgets=book,
        )  # fmt: skip
        reply = await handlers.spawn(spawn("!spawn coder-1"))
        assert isinstance(reply, Reply)
        assert "Started on its fallback, stub: agent:coder-1 is queued" in reply.markdown
        record = await ledger.get_agent(name)
        assert record is not None and (record.runtime, record.model) == ("stub", None)
    finally:
        record = await ledger.get_agent(name)
        if record is not None and record.state.is_live:
            await fleet.stop_agent(name, force=True)
        await fleet.stop()
