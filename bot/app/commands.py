"""The app's commands phase: the handlers, the ACL, the grammars and the router, with the
scheduler they add jobs to and the follower of the screens ``watch`` shows.

The commands are built by :func:`bot.commands.wiring.build_commands`; the scheduler is made here
(``schedule`` commands and deferred spawns add jobs to it) and started by the next phase
(:func:`bot.app.jobs.start_jobs`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.app.fleet import Fleeted
from bot.app.ledger import Ledgered
from bot.app.serving import Serving
from bot.app.spend import Spend
from bot.app.stops import Stop, Stops
from bot.commands.handlers.watch_follow import ScreenFollower
from bot.commands.wiring import Commands, build_commands
from bot.config import Config
from fleet.clock import Clock
from fleet.forge.work import ForgeWork
from fleet.hosts.service import Hosts
from fleet.repos.desk import RepoDesk
from fleet.sandbox.service import Sandboxes
from fleet.supervisor.fleet import RosterDiff
from scheduler.context import JobContext
from scheduler.jobs import FleetScheduler


@dataclass(frozen=True, slots=True)
class Commanded:
    """What the commands phase made."""

    commands: Commands
    scheduler: FleetScheduler[JobContext]
    follower: ScreenFollower


def make_commands(
    cfg: Config,
    *,
    ledgered: Ledgered,
    spend: Spend,
    fleeted: Fleeted,
    sandboxes: Sandboxes,
    hosts: Hosts,
    serving: Serving,
    clock: Clock,
    reports_dir: Path,
    reload_roster: Callable[[], Awaitable[RosterDiff]] | None,
    stops: Stops,
    repos: RepoDesk | None = None,
    forge_work: Callable[[], ForgeWork | None] = lambda: None,
) -> Commanded:
    """The commands, routed: ``serving`` hands the connectors' messages to their router
    from now on. ``repos``: the repositories agents work on (``None``: none configured)."""
    ledger, notifier, fleet = ledgered.ledger, ledgered.notifier, fleeted.fleet
    scheduler: FleetScheduler[JobContext] = FleetScheduler()
    stops.add(Stop.SCHEDULER, scheduler.shutdown)
    follower = ScreenFollower(fleet, ledger.chat, serving.named)
    stops.add(Stop.FOLLOWER, follower.stop)
    built = build_commands(
        cfg,
        ledger=ledger,
        fleet=fleet,
        budgets=spend.budgets,
        scheduler=scheduler,
        follower=follower,
        clock=clock,
        reports_dir=reports_dir,
        reload_roster=reload_roster,
        accounts=spend.accounts,
        queue=fleeted.queue,
        connector_named=serving.named,
        sandboxes=sandboxes,
        notices=notifier,
        ordering=notifier.ordering,
        approvals=ledgered.approvals,
        hosts=hosts,
        problems=serving.failures.problems,
        repos=repos,
        forge_work=forge_work,
    )
    serving.router = built.router
    return Commanded(built, scheduler, follower)
