"""The app's commands phase: the handlers, the ACL, the grammars and the router, with the
scheduler they add jobs to and the follower of the screens ``watch`` shows.

The commands are built by :func:`bot.app.phases.serving.handlers.build_commands`; the scheduler
is made here (``schedule`` commands and deferred spawns add jobs to it) and started by the next
phase (:func:`bot.app.phases.serving.jobs.start_jobs`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.app.phases.fleet.launching import Fleeted
from bot.app.phases.serving.handlers import Commands, build_commands
from bot.app.stops import Stop
from bot.commands.handlers.agents.watch_follow import ScreenFollower
from bot.commands.handlers.overview import RosterEditor
from bot.commands.handlers.places.forge import ForgeParts
from fleet.repos.desk import RepoDesk
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
    at: Grounds,
    ledgered: Ledgered,
    spend: Spend,
    fleeted: Fleeted,
    reload_roster: Callable[[], Awaitable[RosterDiff]] | None,
    repos: RepoDesk | None = None,
    forge: ForgeParts | None = None,
    edit_roster: RosterEditor | None = None,
) -> Commanded:
    """The commands and their router (the connectors phase hands it the connectors'
    messages). ``repos``: the repositories agents work on (``None``: none configured);
    ``forge``: what the forge commands use of forge work (``None`` without forges)."""
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
        reload_roster=reload_roster,
        repos=repos,
        forge=forge,
        edit_roster=edit_roster,
    )
    return Commanded(built, scheduler, follower)
