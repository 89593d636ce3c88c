"""The app's commands phase: the handlers, the ACL, the grammars and the router, with the
scheduler they add jobs to and the follower of the screens ``watch`` shows.

The families of commands are built by :mod:`bot.app.phases.serving.handlers` and routed by
:mod:`bot.app.phases.serving.routing`; the scheduler is made here (``schedule`` commands
and deferred spawns add jobs to it) and started by the next phase
(:func:`bot.app.phases.serving.jobs.start_jobs`)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.acl import Acl
from bot.app import assembly as wiring
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.app.phases.fleet.launching import Fleeted
from bot.app.phases.serving.handlers import (
    FamilyParts,
    agent_families,
    agent_handlers,
    co_authors,
    forge_runs_of,
    grammars_of,
    overview_commands,
    place_families,
    schedule_commands,
    spend_families,
    task_commands,
    work_families,
)
from bot.app.phases.serving.routing import open_queue, route
from bot.app.stops import Stop
from bot.commands.handlers.agents.watch_follow import ScreenFollower
from bot.commands.handlers.approvals.answers import ApprovalDesk
from bot.commands.handlers.launches.schedules import ScheduleCommands
from bot.commands.handlers.launches.spawn_queue import SpawnQueue
from bot.commands.handlers.overview import RosterFile
from bot.commands.handlers.places.forge import ForgeParts
from bot.commands.routing.confirmations import ConfirmationDesk
from bot.commands.routing.router import Router
from bot.dashboard.access.signin import SignIns
from fleet.repos.desk import RepoDesk
from scheduler.context import JobContext
from scheduler.jobs import FleetScheduler


@dataclass(frozen=True, slots=True)
class Commands:
    """What the commands phase builds for the phases after it."""

    router: Router
    acl: Acl
    schedules: ScheduleCommands
    queue: SpawnQueue
    approvals: ApprovalDesk
    signins: SignIns | None  # the dashboard's, when the config has one


@dataclass(frozen=True, slots=True)
class Commanded:
    """What the commands phase made."""

    commands: Commands
    scheduler: FleetScheduler[JobContext]
    follower: ScreenFollower


def make_commands(
    at: Grounds,
    ledgered: Ledgered,
    spend: Spend,
    fleeted: Fleeted,
    roster: RosterFile | None,
    repos: RepoDesk | None = None,
    forge: ForgeParts | None = None,
) -> Commanded:
    """The commands and their router (the connectors phase hands it the connectors'
    messages). ``roster``: what the roster commands change (``None``: no config file);
    ``repos``: the repositories agents work on (``None``: none configured); ``forge``: what
    the forge commands use of forge work (``None`` without forges)."""
    scheduler: FleetScheduler[JobContext] = FleetScheduler()
    at.stops.add(Stop.SCHEDULER, scheduler.shutdown)
    follower = ScreenFollower(fleeted.fleet, ledgered.ledger.chat, at.serving.named)
    at.stops.add(Stop.FOLLOWER, follower.stop)
    built = build_commands(
        at,
        ledgered=ledgered,
        spend=spend,
        fleeted=fleeted,
        scheduler=scheduler,
        follower=follower,
        roster=roster,
        repos=repos,
        forge=forge,
    )
    return Commanded(built, scheduler, follower)


def build_commands(
    at: Grounds,
    *,
    ledgered: Ledgered,
    spend: Spend,
    fleeted: Fleeted,
    scheduler: FleetScheduler[JobContext],
    follower: ScreenFollower,
    roster: RosterFile | None,
    repos: RepoDesk | None = None,
    forge: ForgeParts | None = None,
) -> Commands:
    """The families of command handlers over what the phases before made, and the router
    over them. ``roster``: what the roster commands change (``None``: no config file).
    ``repos``: the repositories agents work on (``None``: the config has no ``repos:``).
    ``forge``: what the forge commands use of forge work (``None`` without forges)."""
    cfg, ledger = at.cfg, ledgered.ledger
    runs, identities = forge_runs_of(cfg, ledgered), co_authors(cfg)
    desk = ConfirmationDesk(ledger.chat, at.clock)
    parts = FamilyParts(at, ledgered, spend, fleeted, repos, forge, runs, identities, desk)
    acl = Acl(wiring.grants_of(cfg))
    signins = SignIns(ledger.dashboard, acl, at.clock) if cfg.dashboard is not None else None
    answers = ApprovalDesk(
        ledgered.approvals, acl, ledger.chat, ledger.audit, fleeted.fleet.outputs.open_runs
    )
    handlers, grammars = agent_handlers(parts, follower), grammars_of(cfg)
    tasks = task_commands(parts, handlers)
    schedules = schedule_commands(parts, scheduler, grammars)
    families = (
        overview_commands(parts, roster),
        *agent_families(parts, handlers, answers),
        *spend_families(parts),
        *place_families(parts, signins),
        schedules,
        *work_families(parts, tasks),
    )
    router = route(parts, acl, families, answers, grammars)
    open_queue(parts, router, handlers, tasks)
    return Commands(router, acl, schedules, fleeted.queue, answers, signins)
