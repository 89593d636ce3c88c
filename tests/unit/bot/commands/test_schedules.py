"""Tests for operator schedules end to end inside one process: the `schedule` commands through
the router, the real APScheduler jobs they register, and a schedule firing — through
Router.run_as — as its creator, audited, with the creator's role looked up at fire time.
No wall-clock waits: runs are started with FleetScheduler.run_now, or polled with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.errors import CommandError
from bot.commands.handlers.launches.schedules import ScheduleCommands, ScheduledRuns
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Request
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from connectors.base import OutboundMessage, RoomId, SendResult
from connectors.errors import ConnectorError
from fleet.ledger import Ledger, ScheduleRecord
from fleet.timing.clock import Clock, ManualClock, SystemClock
from scheduler.context import JobContext
from scheduler.cron import cron_trigger, next_fire
from scheduler.errors import UnknownJob
from scheduler.jobs import FleetScheduler
from scheduler.schedule_job import MISFIRE_GRACE, SCHEDULE_JOB_REF, job_id
from tests.fakes.doubles.job_context import job_context
from tests.unit.chat_fakes import OPERATOR, T0, VIEWER, Calls, FakeConnector, message

ADMIN = "@root:example.org"
ROOM = "!room:example.org"
DEADLINE = 5.0
BERLIN = ZoneInfo("Europe/Berlin")


@dataclass
class Rig:
    """Everything a schedule touches, wired as the app wires it."""

    ledger: Ledger
    scheduler: FleetScheduler[JobContext]
    router: Router
    commands: ScheduleCommands
    chat: FakeConnector
    calls: Calls

    async def say(self, text: str, sender: str = ADMIN, event: str = "$ev") -> str:
        """Type ``text`` into the room; return the reply."""
        before = len(self.chat.sent)
        await self.router.handle(self.chat, message(text, sender=sender, event_id=event))
        return "\n".join(m.markdown for m in self.chat.sent[before:])

    async def stored(
        self,
        command: str,
        *,
        created_by: str = ADMIN,
        cron: str = "0 2 * * *",
        at: datetime | None = None,
    ) -> ScheduleRecord:
        """A schedule saved straight into the ledger (as an earlier Fleetwarden saved it)."""
        record = await self.ledger.schedules.add_schedule(
            cron=cron,
            command=command,
            created_by=created_by,
            connector="matrix",
            room=ROOM,
            at=at,
        )
        await self.commands.restore()
        return record


def make_rig(
    ledger: Ledger,
    scheduler: FleetScheduler[JobContext],
    clock: Clock,
    chat: FakeConnector,
    timezone: ZoneInfo | None = None,
) -> Rig:
    calls = Calls()
    grammar = Grammar(COMMANDS)
    zone = timezone or ZoneInfo("UTC")
    commands = ScheduleCommands(
        schedules=ledger.schedules,
        scheduler=scheduler,
        grammar_for=lambda _connector: grammar,
        clock=clock,
        timezone=zone,
    )
    acl = Acl(
        [Grant(ADMIN, Role.ADMIN), Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)]
    )
    router = Router(
        grammar=grammar,
        acl=acl,
        handlers={**calls.table(), **commands.table()},
        audit=ledger.audit,
        chat=ledger.chat,
    )
    runs = ScheduledRuns(
        schedules=ledger.schedules,
        router=router,
        connector_named=lambda name: chat if name == chat.name else None,
        clock=clock,
        timezone=zone,
    )
    scheduler.start(job_context(scheduler=scheduler, schedules=runs))
    return Rig(ledger, scheduler, router, commands, chat, calls)


@pytest.fixture
async def scheduler() -> AsyncIterator[FleetScheduler[JobContext]]:
    """A scheduler, started by :func:`make_rig` with the rig's runner in its context."""
    made: FleetScheduler[JobContext] = FleetScheduler()
    yield made
    await made.shutdown()


@pytest.fixture
async def schedules_rig(
    ledger: Ledger, scheduler: FleetScheduler[JobContext], chat: FakeConnector
) -> Rig:
    return make_rig(ledger, scheduler, ManualClock(T0), chat)


# --- schedule add -----------------------------------------------------------------------------


async def test_an_admin_adds_a_schedule_and_its_cron_job_is_registered(schedules_rig: Rig) -> None:
    """`schedule add` saves the schedule and registers a cron job by import path with plain
    data, coalesced, one at a time, with the 5-minute grace, next run per the expression."""
    reply = await schedules_rig.say(
        '!schedule add "0 2 * * *" spawn reviewer --prompt "review yesterday\'s merges"'
    )
    [record] = await schedules_rig.ledger.schedules.list_schedules()
    assert (record.cron, record.command) == (
        "0 2 * * *",
        'spawn reviewer --prompt "review yesterday\'s merges"',
    )
    assert (record.created_by, record.connector, record.room) == (ADMIN, "matrix", ROOM)
    job = schedules_rig.scheduler.job(job_id(record.id))
    assert job.func_ref == SCHEDULE_JOB_REF
    assert dict(job.kwargs) == {"schedule_id": record.id}
    assert (job.coalesce, job.max_instances) == (True, 1)
    assert job.misfire_grace_time == MISFIRE_GRACE.total_seconds()
    assert job.seconds is None and job.trigger.startswith("cron[")
    assert job.next_run_at is not None
    assert job.next_run_at.astimezone(UTC).strftime("%H:%M") == "02:00"
    assert f"Schedule **{record.id}** added" in reply and "Next run:" in reply


async def test_the_cron_job_runs_in_the_configured_timezone(
    ledger: Ledger, scheduler: FleetScheduler[JobContext], chat: FakeConnector
) -> None:
    """With Europe/Berlin, `0 2 * * *` is next due at 02:00 Berlin time."""
    berlin = make_rig(ledger, scheduler, ManualClock(T0), chat, BERLIN)
    await berlin.say('!schedule add "0 2 * * *" ps')
    job = scheduler.job(job_id(1))
    assert job.next_run_at is not None
    local = job.next_run_at.astimezone(BERLIN)
    assert (local.hour, local.minute) == (2, 0)
    expected = next_fire(cron_trigger("0 2 * * *", BERLIN), datetime.now(UTC))
    assert job.next_run_at == expected


@pytest.mark.parametrize("sender", [OPERATOR, VIEWER])
async def test_only_admins_may_add_a_schedule(schedules_rig: Rig, sender: str) -> None:
    """An operator's or viewer's `schedule add` is denied; nothing is saved."""
    reply = await schedules_rig.say('!schedule add "0 2 * * *" ps', sender=sender)
    assert "needs the admin role" in reply
    assert await schedules_rig.ledger.schedules.list_schedules() == []
    [entry] = await schedules_rig.ledger.audit.audit_entries()
    assert entry.outcome == "denied"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('!schedule add "0 2 * *" ps', "5 fields"),
        ('!schedule add "61 * * * *" ps', "61"),
        ("!schedule add 0 2 * * * ps", 'put the expression in quotes: schedule add "0 2 * * *"'),
        ('!schedule add "0 0 31 2 *" ps', "never fires"),
        ('!schedule add "0 2 1 * mon" ps', "make two schedules"),
        ('!schedule add "0 2 * * *" sapwn reviewer', "did you mean 'spawn'"),
        ('!schedule add "0 2 * * *" logs', "does not parse: logs: missing NAME"),
        ('!schedule add "0 2 * * *" schedule list', "cannot run `schedule` commands"),
        ('!schedule add "0 2 * * *" schedule add "* * * * *" ps', "cannot run `schedule`"),
        ('!schedule add "0 2 * * *"', "missing COMMAND"),
    ],
)
async def test_a_bad_schedule_is_refused_and_nothing_is_saved(
    schedules_rig: Rig, text: str, problem: str
) -> None:
    """A bad expression, a command that does not parse, or a schedule of `schedule` is an
    error that says why; no row, no job."""
    reply = await schedules_rig.say(text)
    assert problem in reply
    assert await schedules_rig.ledger.schedules.list_schedules() == []
    [entry] = await schedules_rig.ledger.audit.audit_entries()
    assert entry.outcome == "error"


async def test_the_command_may_carry_the_prefix(schedules_rig: Rig) -> None:
    """`schedule add "…" !ps` is as good as `… ps`: the command is checked as addressed."""
    await schedules_rig.say('!schedule add "0 2 * * *" !ps')
    [record] = await schedules_rig.ledger.schedules.list_schedules()
    assert record.command == "!ps"


# --- schedule list / remove ------------------------------------------------------------------


@pytest.mark.parametrize("words", ["!schedule", "!schedule list"])
async def test_everyone_listed_may_list_the_schedules(schedules_rig: Rig, words: str) -> None:
    """A viewer sees each schedule's id, cron, command, creator, next run and last run."""
    await schedules_rig.say('!schedule add "0 2 * * *" ps')
    reply = await schedules_rig.say(words, sender=VIEWER, event="$list")
    assert "| 1 | `0 2 * * *` | `ps` | @root:example.org |" in reply
    assert "02:00" in reply and "never" in reply and "Times are in UTC." in reply


async def test_remove_unschedules_and_forgets(schedules_rig: Rig) -> None:
    """`schedule remove ID` deletes the row and the job."""
    await schedules_rig.say('!schedule add "0 2 * * *" ps')
    reply = await schedules_rig.say("!schedule remove 1", event="$rm")
    assert "Schedule **1** removed" in reply
    assert await schedules_rig.ledger.schedules.list_schedules() == []
    with pytest.raises(UnknownJob):
        schedules_rig.scheduler.job(job_id(1))


@pytest.mark.parametrize(
    ("text", "sender", "problem"),
    [
        ("!schedule remove 7", ADMIN, "there is no schedule 7"),
        ("!schedule remove seven", ADMIN, "ID is a number"),
        ("!schedule remove 1", OPERATOR, "needs the admin role"),
    ],
)
async def test_remove_refuses_what_it_cannot_do(
    schedules_rig: Rig, text: str, sender: str, problem: str
) -> None:
    """An unknown id, a non-number, or a non-admin: an error, and the schedule stays."""
    await schedules_rig.say('!schedule add "0 2 * * *" ps')
    assert problem in await schedules_rig.say(text, sender=sender, event="$rm")
    assert len(await schedules_rig.ledger.schedules.list_schedules()) == 1


# --- firing ------------------------------------------------------------------------------------


async def test_a_fired_schedule_runs_as_its_creator_and_is_audited_so(schedules_rig: Rig) -> None:
    """run_now of the job: the command reaches its handler with the creator's role, the
    audit names the creator and the schedule, the reply goes to the room under a heading,
    and the run is recorded on the schedule."""
    await schedules_rig.say('!schedule add "0 2 * * *" spawn reviewer --prompt "review"')
    schedules_rig.chat.sent.clear()

    assert await schedules_rig.scheduler.run_now(job_id(1)) == "ok"

    [req] = schedules_rig.calls.requests
    assert isinstance(req, Request)
    assert req.command.name == "spawn" and req.command.flags["prompt"] == "review"
    assert (req.message.sender, req.role, req.message.room) == (ADMIN, Role.ADMIN, ROOM)
    assert req.message.event_id is None  # nothing to reply to in the room
    entry = (await schedules_rig.ledger.audit.audit_entries())[0]
    assert (entry.sender, entry.source, entry.command, entry.outcome) == (
        ADMIN,
        "schedule:1",
        "spawn",
        "ok",
    )
    assert entry.text == 'spawn reviewer --prompt "review"'
    [sent] = schedules_rig.chat.sent
    assert sent.room == ROOM and sent.in_reply_to is None
    assert sent.markdown.startswith("Schedule **1** (`0 2 * * *`, set up by @root:example.org)")
    assert sent.markdown.endswith("ran **spawn**")
    record = await schedules_rig.ledger.schedules.get_schedule(1)
    assert record is not None and (record.last_run_at, record.last_outcome) == (T0, "ok")


async def test_a_double_fire_runs_once(schedules_rig: Rig) -> None:
    """Two fires for the same due time (same synthetic event id) run the command once."""
    await schedules_rig.say('!schedule add "0 2 * * *" ps')
    assert await schedules_rig.scheduler.run_now(job_id(1)) == "ok"
    assert await schedules_rig.scheduler.run_now(job_id(1)) is None
    assert len(schedules_rig.calls.requests) == 1
    assert [e.source for e in await schedules_rig.ledger.audit.audit_entries()] == [
        "schedule:1",
        "typed",
    ]


@pytest.mark.parametrize(
    ("creator", "now_is"), [(VIEWER, "now a viewer"), ("@gone:example.org", "not an operator")]
)
async def test_a_creator_who_lost_the_role_gets_the_run_refused_and_recorded(
    schedules_rig: Rig, creator: str, now_is: str
) -> None:
    """If the creator is no longer an admin or operator, nothing runs: the audit has a
    denied entry as them from the schedule, the room is told, the schedule records it."""
    record = await schedules_rig.stored("ps", created_by=creator)
    assert await schedules_rig.scheduler.run_now(job_id(record.id)) == "denied"
    assert schedules_rig.calls.requests == []
    [entry] = await schedules_rig.ledger.audit.audit_entries()
    assert (entry.sender, entry.source, entry.outcome, entry.command) == (
        creator,
        f"schedule:{record.id}",
        "denied",
        "ps",
    )
    assert entry.detail is not None and now_is in entry.detail
    [sent] = schedules_rig.chat.sent
    assert now_is in sent.markdown
    saved = await schedules_rig.ledger.schedules.get_schedule(record.id)
    assert saved is not None and saved.last_outcome == "denied"


async def test_an_operator_creator_still_runs_control_commands(schedules_rig: Rig) -> None:
    """A creator demoted from admin to operator still may: the run goes ahead as operator."""
    record = await schedules_rig.stored("stop coder-1", created_by=OPERATOR)
    assert await schedules_rig.scheduler.run_now(job_id(record.id)) == "ok"
    [req] = schedules_rig.calls.requests
    assert req.role is Role.OPERATOR


async def test_a_failing_command_is_recorded_as_an_error(schedules_rig: Rig) -> None:
    """A scheduled command whose handler raises a CommandError is audited and recorded
    as an error, with the reason."""

    async def broken(req: Request) -> str:
        raise CommandError("no agent named coder-9")

    schedules_rig.calls.behaviour["stop"] = broken
    record = await schedules_rig.stored("stop coder-9")
    assert await schedules_rig.scheduler.run_now(job_id(record.id)) == "error"
    saved = await schedules_rig.ledger.schedules.get_schedule(record.id)
    assert saved is not None
    assert (saved.last_outcome, saved.last_detail) == ("error", "no agent named coder-9")
    assert "no agent named coder-9" in schedules_rig.chat.sent[-1].markdown


async def test_a_schedule_of_a_connector_not_running_is_recorded_as_an_error(
    schedules_rig: Rig,
) -> None:
    """A schedule made on a connector that is not running now is not run; it says why."""
    record = await schedules_rig.ledger.schedules.add_schedule(
        cron="0 2 * * *", command="ps", created_by=ADMIN, connector="discord", room="#ops"
    )
    await schedules_rig.commands.restore()
    assert await schedules_rig.scheduler.run_now(job_id(record.id)) == "error"
    saved = await schedules_rig.ledger.schedules.get_schedule(record.id)
    assert saved is not None and saved.last_detail is not None
    assert "discord connector is not running" in saved.last_detail
    assert schedules_rig.calls.requests == [] and schedules_rig.chat.sent == []


class LostRoomConnector(FakeConnector):
    """A connector whose schedule room is gone (the bot was removed from it)."""

    @property
    def home_room(self) -> RoomId | None:
        return RoomId("!home:example.org")

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.room == ROOM:
            raise ConnectorError("not in that room any more")
        return await super().send(message)


async def test_a_reply_that_cannot_reach_its_room_goes_to_the_home_room(
    ledger: Ledger, scheduler: FleetScheduler[JobContext]
) -> None:
    """When the schedule's room refuses the reply, it is posted in the home room instead and
    the run is still recorded."""
    lost = LostRoomConnector()
    schedules_rig = make_rig(ledger, scheduler, ManualClock(T0), lost)
    record = await schedules_rig.stored("ps")
    assert await scheduler.run_now(job_id(record.id)) == "ok"
    [sent] = lost.sent
    assert sent.room == "!home:example.org" and "ran **ps**" in sent.markdown


async def test_restore_registers_every_schedule_and_makes_up_a_just_missed_run(
    ledger: Ledger,
    scheduler: FleetScheduler[JobContext],
    chat: FakeConnector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On start every stored schedule gets its job again; an every-minute schedule made an
    hour ago has a run due within the last minute, which is made up at once."""
    recorded = asyncio.Event()
    record_run = ledger.schedules.record_schedule_run

    async def record_and_tell(*args: Any, **kwargs: Any) -> None:
        await record_run(*args, **kwargs)
        recorded.set()

    monkeypatch.setattr(ledger.schedules, "record_schedule_run", record_and_tell)
    schedules_rig = make_rig(ledger, scheduler, SystemClock(), chat)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    far_hour = (hour_ago.hour + 12) % 24  # never due in the last few minutes
    for cron, command in ((f"0 {far_hour} * * *", "ps"), ("* * * * *", "usage")):
        await ledger.schedules.add_schedule(
            cron=cron,
            command=command,
            created_by=ADMIN,
            connector="matrix",
            room=ROOM,
            at=hour_ago,
        )
    assert await schedules_rig.commands.restore() == 2
    assert scheduler.job(job_id(1)).next_run_at is not None
    await asyncio.wait_for(recorded.wait(), DEADLINE)
    assert [r.command.name for r in schedules_rig.calls.requests] == ["usage"]
    [entry] = await ledger.audit.audit_entries()
    assert (entry.source, entry.command) == ("schedule:2", "usage")
