"""A ``spawn`` that a queued budget turns away: deferred to when the queue should clear,
or refused with why; and the job that runs it again."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.acl import Role
from bot.commands import COMMANDS
from bot.errors import CommandError
from bot.grammar import Grammar
from bot.handlers import Deferrer, Handlers, Reply, Request
from connectors.base import InboundMessage
from fleet.ledger import Ledger
from scheduler import jobs
from scheduler.deferred import run_deferred
from scheduler.jobs import SchedulerError
from tests.fakes.budget_book import StaticBook
from tests.unit.chat_fakes import OPERATOR, T0, message
from tests.unit.test_report import BERLIN, NOW
from tests.unit.test_report_commands import handlers as report_handlers

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


async def test_the_job_hands_the_command_to_the_registered_runner() -> None:
    runner = Runner()
    jobs.register_context("deferred-test", runner)
    try:
        await run_deferred(
            runner="deferred-test",
            connector="console",
            sender="console",
            room="r",
            text="spawn coder-1",
            job="deferred-1",
        )
        assert runner.runs == [
            {
                "connector": "console",
                "sender": "console",
                "text": "spawn coder-1",
                "job": "deferred-1",
            }
        ]
        jobs.register_context("not-a-runner", object())
        with pytest.raises(SchedulerError, match="not a runner"):
            await run_deferred(
                runner="not-a-runner", connector="c", sender="s", room="r", text="t", job="j"
            )
    finally:
        jobs.unregister_context("deferred-test")
        jobs.unregister_context("not-a-runner")
