"""Operator schedules in the bot: the ``schedule`` commands, and running a schedule's command
when its time comes.

:class:`ScheduleCommands` handles ``schedule [list]``, ``schedule add "CRON" COMMAND`` and
``schedule remove ID``: it checks the expression and the command *before* anything is saved,
keeps the ledger's ``schedules`` table and the scheduler's jobs in step, and registers every
stored schedule again when the app starts (:meth:`ScheduleCommands.restore`).

:class:`ScheduledRuns` is what the scheduled job (:func:`scheduler.schedule_job.run_schedule`)
reaches through the job context: it hands the stored command to
:meth:`bot.commands.routing.router.Router.run_as` as the schedule's creator, in the room the
schedule was made in, and records how the run went. Misfire and coalescing rules are in
:mod:`scheduler.schedule_job`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo

from bot.acl import Acl
from bot.commands.errors import CommandError, NotFound, ParseError, PermissionDenied
from bot.commands.family import Family, command
from bot.commands.handlers.launches.specs import (
    SCHEDULE,
    SCHEDULE_ADD,
    SCHEDULE_LIST,
    SCHEDULE_REMOVE,
)
from bot.commands.parsing.grammar import Grammar
from bot.commands.parsing.shapes import Command
from bot.commands.routing.request import Request
from bot.commands.routing.router import Router
from bot.commands.routing.sources import Delegated
from bot.render.work import schedules as render
from connectors.base import Connector, RoomId, UserId
from fleet.ledger import ScheduleRecord
from fleet.ledger.stores.running.schedules import SchedulesStore
from fleet.supervisor.admission.request import LaunchRequest
from fleet.timing.clock import Clock
from scheduler import schedule_job as scheduled
from scheduler.context import JobContext
from scheduler.cron import cron_trigger, next_fire
from scheduler.errors import CronError, UnknownJob
from scheduler.jobs import FleetScheduler

log = logging.getLogger(__name__)

_ID = re.compile(r"[0-9]{1,18}")


class ScheduleCommands(Family):
    """The ``schedule`` commands, over the ledger and the scheduler."""

    def __init__(
        self,
        *,
        schedules: SchedulesStore,
        scheduler: FleetScheduler[JobContext],
        grammar_for: Callable[[str], Grammar],
        clock: Clock,
        timezone: tzinfo,
        stranger: Callable[[LaunchRequest], Awaitable[str | None]] | None = None,
    ) -> None:
        """``grammar_for`` gives a connector's grammar (commands are checked with it).
        ``stranger``: why a launch's name is likely a typo of a known agent's (admission's
        naming stage), asked of a scheduled ``spawn`` when it is added, not first at 9 am."""
        self._schedules = schedules
        self._scheduler = scheduler
        self._grammar_for = grammar_for
        self._stranger = stranger
        self._clock = clock
        self._timezone = timezone

    @command(SCHEDULE)
    @command(SCHEDULE_LIST, under=SCHEDULE)
    async def list(self, req: Request) -> str:
        records = await self._schedules.list_schedules()
        upcoming = {record.id: self._next_run(record.id) for record in records}
        return render.schedules(records, upcoming, self._clock.now(), self._timezone)

    @command(SCHEDULE_ADD, under=SCHEDULE)
    async def add(self, req: Request) -> str:
        cron = " ".join(req.arg("CRON").split())
        text = req.arg("COMMAND").strip()
        check_cron(cron, self._timezone, self._clock.now())
        command = check_command(self._grammar_for(req.message.connector), req, text)
        named = _named_agent(command)
        if self._stranger is not None and named is not None:
            new = command.name == "spawn" and command.bool_flag("new")
            launch = LaunchRequest(agent=named, origin="schedule", new=new)
            why = await self._stranger(launch)
            if why is not None:
                raise CommandError(f"schedule add: {why}")
        record = await self._schedules.add_schedule(
            cron=cron,
            command=text,
            created_by=req.message.sender,
            connector=req.message.connector,
            room=req.message.room,
        )
        try:
            self._register(record)
        except BaseException:
            await self._schedules.remove_schedule(record.id)
            raise
        log.info("schedule %d added by %s: %r at %r", record.id, req.who, text, cron)
        return render.schedule_added(record, self._next_run(record.id), self._timezone)

    @command(SCHEDULE_REMOVE, under=SCHEDULE)
    async def remove(self, req: Request) -> str:
        raw = req.arg("ID").strip().removeprefix("#")
        if not _ID.fullmatch(raw):
            raise CommandError(f"schedule remove: ID is a number, got {raw!r} — see schedule list")
        record = await self._schedules.remove_schedule(int(raw))
        if record is None:
            raise NotFound(f"there is no schedule {raw} — see schedule list")
        with contextlib.suppress(UnknownJob):
            self._scheduler.remove(scheduled.job_id(record.id))
        log.info("schedule %d removed by %s", record.id, req.who)
        return render.schedule_removed(record)

    async def restore(self) -> int:
        """Register the job of every stored schedule (making up a run just missed); return
        how many. One that cannot be registered is logged and left out, not fatal."""
        count = 0
        for record in await self._schedules.list_schedules():
            try:
                self._register(record)
            except CronError as exc:
                log.error("schedule %d (%r) is not scheduled: %s", record.id, record.cron, exc)
            else:
                count += 1
        return count

    def _register(self, record: ScheduleRecord) -> None:
        scheduled.register(
            self._scheduler,
            record.id,
            record.cron,
            timezone=self._timezone,
            created_at=record.created_at,
            now=self._clock.now(),
        )

    def _next_run(self, schedule_id: int) -> datetime | None:
        try:
            return self._scheduler.job(scheduled.job_id(schedule_id)).next_run_at
        except UnknownJob:
            return None


def check_cron(expr: str, timezone: tzinfo, now: datetime) -> None:
    """Refuse, with a message for the operator, a crontab expression that cannot be used
    or never fires."""
    try:
        trigger = cron_trigger(expr, timezone)
    except CronError as exc:
        hint = ""
        if len(expr.split()) == 1:
            hint = ' — put the expression in quotes: schedule add "0 2 * * *" COMMAND'
        raise CommandError(f"schedule add: bad cron expression {expr!r}: {exc}{hint}") from None
    if next_fire(trigger, now) is None:
        raise CommandError(f"schedule add: {expr!r} never fires (no such date)")


def _named_agent(command: Command) -> str | None:
    """The agent a scheduled command will launch by a name typed in it: ``spawn NAME``,
    ``task new``/``task start`` with ``--agent NAME``."""
    if command.name == "spawn":
        return command.args["NAME"]
    if command.name in ("task new", "task start"):
        return command.str_flag("agent")
    return None


def check_command(grammar: Grammar, req: Request, text: str) -> Command:
    """The command ``text`` parsed; refused, with a message for the operator, when it could
    not run as scheduled: blank, not parsing, a ``schedule`` command, or one the creator may
    not run."""
    if not text:
        raise CommandError("schedule add: nothing to run — give the command after CRON")
    try:
        command = grammar.parse(text, addressed=True)
    except ParseError as exc:
        raise CommandError(f"schedule add: the command does not parse: {exc}") from None
    if command is None:
        raise CommandError("schedule add: nothing to run — give the command after CRON")
    if command.spec.name.split()[0] == "schedule":
        raise CommandError("schedule add: a schedule cannot run `schedule` commands")
    if not Acl.allows(req.role, command.spec):
        raise PermissionDenied(f"schedule add: you may not run `{command.name}` yourself")
    return command


class ScheduledRuns:
    """Runs a schedule's command as its creator: the job context's schedule runner."""

    def __init__(
        self,
        *,
        schedules: SchedulesStore,
        router: Router,
        connector_named: Callable[[str], Connector | None],
        clock: Clock,
        timezone: tzinfo,
    ) -> None:
        """``connector_named`` finds a running connector by name."""
        self._schedules = schedules
        self._router = router
        self._connector_named = connector_named
        self._clock = clock
        self._timezone = timezone

    async def run_schedule(self, schedule_id: int) -> str | None:
        """Run schedule ``schedule_id`` now; its outcome, or ``None`` if nothing ran."""
        record = await self._schedules.get_schedule(schedule_id)
        if record is None:
            log.warning("schedule %d fired but is no longer in the ledger", schedule_id)
            return None
        now = self._clock.now()
        connector = self._connector_named(record.connector)
        if connector is None:
            detail = f"not run: the {record.connector} connector is not running"
            log.warning("schedule %d %s", record.id, detail)
            await self._schedules.record_schedule_run(record.id, "error", detail, at=now)
            return "error"
        due = scheduled.due_time(record.cron, self._timezone, created_at=record.created_at, now=now)
        ran = await self._router.run_as(
            connector,
            Delegated(
                sender=UserId(record.created_by),
                room=RoomId(record.room),
                text=record.command,
                event_id=scheduled.event_id(record.id, due),
                source=f"schedule:{record.id}",
                at=now,
                heading=render.schedule_heading(record),
            ),
        )
        if ran is None:
            log.info("schedule %d: the run due at %s already happened", record.id, due)
            return None
        log.info(
            "schedule %d ran %r as %s: %s", record.id, ran.command, record.created_by, ran.outcome
        )
        await self._schedules.record_schedule_run(record.id, ran.outcome, ran.detail, at=now)
        return ran.outcome
