"""The app's forge work phase: forge work over the fleet and the repositories
(:func:`start_forges`) with the desk the forge door reaches, the webhook endpoint's routes
(:mod:`bot.app.phases.forges.webhooks`: served on the dashboard's address, or on their own when
the dashboard is off), chat's word on a forge run (:mod:`bot.app.phases.forges.news`) and
the rounds the scheduler runs
(:mod:`fleet.forge.runs.rounds`: the pollers, the round that keeps forge runs moving, the
Apps' tokens for git renewed)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.repos import version
from bot.app.phases.core.spend import Spend
from bot.app.phases.fleet.launching import Fleeted
from bot.app.phases.forges.clients import ForgeClients
from bot.app.phases.forges.news import checked, teller
from bot.app.phases.forges.webhooks import webhook_routes
from bot.app.stops import Stop
from bot.commands.handlers.places.forge import ForgeParts
from fleet.forge.fleet_launcher import FleetLauncher
from fleet.forge.posts.provenance import Expected, ProvenanceSource, RunRecords
from fleet.forge.posts.publish import Publisher
from fleet.forge.runs.built import BuiltWork, build_work
from fleet.forge.runs.desk import ForgeDesk
from fleet.forge.runs.merging import PullMerges
from fleet.forge.runs.polling import ForgePolling
from fleet.forge.runs.queued import QueuedRuns, queue_left_runs
from fleet.forge.runs.reviewing import ForgeReviewing
from fleet.forge.runs.rounds import Rounds
from fleet.forge.runs.work import ForgeWork
from fleet.forge.tasks import ForgeTasks
from fleet.ledger.records.forge import Slug
from fleet.repos.schema import RepoEntry
from fleet.repos.service import Repos
from fleet.repos.verbs import RepoVerbs
from fleet.tasks.spent import TaskSpend

log = logging.getLogger(__name__)

SETTLE_SECONDS = 20.0
"""How long a stop waits for the events already taken to be acted on."""


@dataclass(frozen=True, slots=True)
class Forged:
    """What the forge work phase made: forge work, the desk the forge door reaches and the
    parts the forge commands use (``None`` without forges, or without a repository on one),
    and the webhook routes to serve (none when no forge has a webhook secret)."""

    work: ForgeWork | None = None
    desk: ForgeDesk | None = None
    parts: ForgeParts | None = None  # what the forge commands use of forge work
    routes: tuple[web.RouteDef, ...] = ()
    rounds: Rounds | None = None  # the scheduler's jobs (none without forges)
    # The forge's side of a review agent's rounds: it reaches the review stage through the
    # desks, where the review phase opens it (until then no run is reviewed, and pull
    # requests open as the forge says).
    reviewing: ForgeReviewing | None = None


@dataclass(frozen=True, slots=True)
class Forging:
    """What each part of forge work is made over: the app's grounds, the forges' clients,
    what the ledger phase made, and the launcher of forge runs over the fleet."""

    at: Grounds
    clients: ForgeClients
    ledgered: Ledgered
    launcher: FleetLauncher


async def start_forges(
    at: Grounds,
    clients: ForgeClients,
    ledgered: Ledgered,
    fleeted: Fleeted,
    spend: Spend,
    repos: Repos | None,
    verbs: RepoVerbs | None,
    desks: Desks,
) -> Forged:
    """Forge work over the running fleet, to be stopped from now on: the round over its
    runs and the pollers started, each forge's login checked and the deliveries kept from
    before the last stop acted on. Chat is told (``ledgered.notifier``) what is wrong with a
    forge's credential or address at start, and a forge run's pull request that could not
    be opened (and when it is open)."""
    cfg, ledger = at.cfg, ledgered.ledger
    if not cfg.forges:
        return Forged()
    if repos is None or verbs is None:
        log.warning("forges are configured but no repository names one: nothing to do")
        return Forged(rounds=Rounds(tokens=clients.tokens))
    launches = fleeted.queue.launches  # a run a cap holds waits there, oldest first
    launcher = FleetLauncher(
        fleeted.fleet,
        repos,
        verbs,
        ledger.agents,
        ledger.runs,
        ledger.lines,
        fleeted.admission,
        launches,
    )
    forging = Forging(at, clients, ledgered, launcher)
    built = forge_built(forging, fleeted)
    work, desk, publisher = built.work, built.desk, built.publisher
    await forge_work(forging, fleeted, work)
    desks.open_forge(desk)
    reviewing = forge_reviewing(forging, publisher, work, desks)
    rounds = forge_rounds(forging, built)
    at.stops.add(Stop.FORGES, functools.partial(stop_forges, rounds, work))
    # The bot's own login, as its credential says it is; then the deliveries taken but not
    # acted on before the last stop.
    logins = checked(work, work.holds, list(cfg.forges), ledgered.notifier.post)
    work.spawn(logins, "the forges' logins and kept deliveries")
    pulls = PullMerges(clients.apis, ledger.forge)
    parts = ForgeParts(cfg.forges, ledger.forge, publisher, launcher, work.holds, work.lock, pulls)
    routes = tuple(webhook_routes(at, work, work.holds, ledger.forge))
    return Forged(work, desk, parts, routes, rounds, reviewing)


def forge_source(forging: Forging, fleeted: Fleeted) -> ProvenanceSource:
    """Where a forge run's posts read its provenance: the ledger's records of its work, this
    version, and what it was expected to cost (a forge issue given to an agent is a task of
    ``fleeted``'s register)."""
    at, ledger = forging.at, forging.ledgered.ledger
    return ProvenanceSource(
        RunRecords(
            agents=ledger.agents,
            runs=ledger.runs,
            metering=ledger.metering,
            approvals=ledger.approvals,
            lines=ledger.lines,
            refusals=ledger.refusals,
            forge=ledger.forge,
        ),
        clock=at.clock,
        version=version(),
        expected=Expected(
            quotes=ledger.quotes,
            tasks=ForgeTasks(
                register=fleeted.register,
                tasks=ledger.tasks,
                spend=TaskSpend(tasks=ledger.tasks, actuals=ledger.actuals),
                forge=ledger.forge,
                runtime=forging.launcher.runtime_of,
            ),
        ),
    )


def forge_built(forging: Forging, fleeted: Fleeted) -> BuiltWork:
    """Forge work, what its runs post (chat told what could not be opened, and when it is;
    a paused run says so on its issue), the forge door's desk and the watch over its runs;
    a run's ask at its cap answered by a comment."""
    at, ledger = forging.at, forging.ledgered.ledger
    return build_work(
        forges=at.cfg.forges,
        apis=forging.clients.apis,
        repos=at.cfg.repos,
        launcher=forging.launcher,
        source=forge_source(forging, fleeted),
        redact=at.redactor.redact,
        tell=teller(forging.ledgered.notifier.post),
        freezes=ledger.budgets.freezes,
        spend=fleeted.spend_asks,
    )


async def forge_work(forging: Forging, fleeted: Fleeted, work: ForgeWork) -> None:
    """Forge work hearing approvals (a run's ask at its cap answered, told on its issue);
    the runs a cap holds waiting in the spawn queue (an older version's placed there too)."""
    ledger, launches = forging.ledgered.ledger, fleeted.queue.launches
    forging.ledgered.approvals.subscribe(work.on_approval)
    queued = QueuedRuns(forge=ledger.forge, starts=work.starts, launcher=forging.launcher)
    launches.listen("forge", queued)
    await queue_left_runs(ledger.forge, launches)


def forge_reviewing(
    forging: Forging, publisher: Publisher, work: ForgeWork, desks: Desks
) -> ForgeReviewing:
    """The forge's side of a review agent's rounds, over the review stage ``desks`` holds
    (opened by the review phase, made after this one): a reviewed run's pull request a
    draft, each review done a round; a head pushed past its approval a draft first."""
    at = forging.at
    reviewing = ForgeReviewing(work, repos=at.cfg.repos, stage=desks.review)
    publisher.review_with(reviewing)
    desks.open_drafts(reviewing.hold_head)
    return reviewing


def forge_rounds(forging: Forging, built: BuiltWork) -> Rounds:
    """The rounds the scheduler runs: the watch over the forge runs, each forge's poller
    (one with ``poll_seconds``) and the Apps' tokens renewed."""
    at, clients, work = forging.at, forging.clients, built.work
    cfg = at.cfg
    polls = [
        ForgePolling.of(
            name, entry, clients.apis[name], _slugs(name, cfg.repos), work=work, clock=at.clock
        )
        for name, entry in cfg.forges.items()
        if entry.poll_seconds is not None
    ]
    return Rounds(watch=built.watch, polls=polls, tokens=clients.tokens)


async def stop_forges(rounds: Rounds, work: ForgeWork) -> None:
    """The rounds stopped, then what was taken acted on before the stop (a delivery already
    recorded would be answered "already had it" if the forge sent it again), then forge
    work closed."""
    await rounds.stop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(work.settle(), SETTLE_SECONDS)
    await work.close()


def _slugs(forge: str, repos: Mapping[str, RepoEntry]) -> list[Slug]:
    """The repositories of ``forge``, which its polling reads."""
    return [
        Slug.parse(slug)
        for repo in repos.values()
        if repo.forge == forge and (slug := repo.forge_slug()) is not None
    ]
