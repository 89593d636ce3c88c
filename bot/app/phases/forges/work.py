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
from fleet.forge.posts.provenance import Expected, ProvenanceSource
from fleet.forge.posts.publish import Publisher
from fleet.forge.runs.desk import ForgeDesk
from fleet.forge.runs.merging import PullMerges
from fleet.forge.runs.polling import ForgePolling
from fleet.forge.runs.queued import QueuedRuns, queue_left_runs
from fleet.forge.runs.reviewing import ForgeReviewing
from fleet.forge.runs.rounds import Rounds
from fleet.forge.runs.watch import ForgeWatch
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
    cfg, clock, ledger = at.cfg, at.clock, ledgered.ledger
    if not cfg.forges:
        return Forged()
    if repos is None or verbs is None:
        log.warning("forges are configured but no repository names one: nothing to do")
        return Forged(rounds=Rounds(tokens=clients.tokens))
    notify = ledgered.notifier.post
    fleet = fleeted.fleet
    launches = fleeted.queue.launches  # a run a cap holds waits there, oldest first
    launcher = FleetLauncher(
        fleet, repos, verbs, ledger.agents, ledger.runs, ledger.lines, fleeted.admission, launches
    )
    source = ProvenanceSource(
        agents=ledger.agents,
        runs=ledger.runs,
        metering=ledger.metering,
        approvals=ledger.approvals,
        lines=ledger.lines,
        refusals=ledger.refusals,
        forge=ledger.forge,
        clock=clock,
        version=version(),
        expected=Expected(
            quotes=ledger.quotes,
            tasks=ForgeTasks(  # a forge issue given to an agent is a task
                register=fleeted.register,
                tasks=ledger.tasks,
                spend=TaskSpend(tasks=ledger.tasks, actuals=ledger.actuals),
                forge=ledger.forge,
                runtime=launcher.runtime_of,
            ),
        ),
    )
    publisher = Publisher(
        forges=cfg.forges,
        apis=clients.apis,
        forge=ledger.forge,
        lines=ledger.lines,
        launcher=launcher,
        clock=clock,
        source=source,
        redact=at.redactor.redact,
        tell=teller(notify),
        freezes=ledger.budgets.freezes,  # a paused run says so on its issue
    )
    work = ForgeWork(
        forges=cfg.forges,
        apis=clients.apis,
        repos=cfg.repos,
        forge=ledger.forge,
        launcher=launcher,
        publisher=publisher,
        clock=clock,
        spend=fleeted.spend_asks,  # a comment answers a run's ask at its cap
    )
    ledgered.approvals.subscribe(work.on_approval)  # a run's ask at its cap, on its issue
    launches.listen("forge", QueuedRuns(forge=ledger.forge, starts=work.starts, launcher=launcher))
    await queue_left_runs(ledger.forge, launches)  # an older version's queued runs, placed
    desk = ForgeDesk(
        forges=cfg.forges,
        apis=clients.apis,
        forge=ledger.forge,
        publisher=publisher,
        launcher=launcher,
        clock=clock,
        lock=work.lock,
        spawn=work.spawn,
    )
    desks.open_forge(desk)  # the forge door reaches forge work from now on
    reviewing = ForgeReviewing(
        forges=cfg.forges,
        repos=cfg.repos,
        apis=clients.apis,
        forge=ledger.forge,
        launcher=launcher,
        onward=work.onward,
        publisher=publisher,
        lock=work.lock,
        spawn=work.spawn,
        stage=desks.review,  # opened by the review phase, made after this one
    )
    publisher.review_with(reviewing)  # a reviewed run's pull request a draft; each done: a round
    desks.open_drafts(reviewing.hold_head)  # a head pushed past its approval: a draft first
    holds = work.holds  # the forges whose events wait (a login not the credential's, a rate limit)
    watch = ForgeWatch(
        work,
        desk,
        forges=cfg.forges,
        forge=ledger.forge,
        launcher=launcher,
        publisher=publisher,
        holds=holds,
        starts=work.starts,
        clock=clock,
    )
    polls = [
        ForgePolling.of(
            name, entry, clients.apis[name], _slugs(name, cfg.repos), work=work, clock=clock
        )
        for name, entry in cfg.forges.items()
        if entry.poll_seconds is not None
    ]
    rounds = Rounds(watch=watch, polls=polls, tokens=clients.tokens)

    async def stop() -> None:
        await rounds.stop()
        # What was taken is acted on before the stop: a delivery already recorded would be
        # answered "already had it" if the forge sent it again.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(work.settle(), SETTLE_SECONDS)
        await work.close()

    at.stops.add(Stop.FORGES, stop)
    # The bot's own login, as its credential says it is; then the deliveries taken but not
    # acted on before the last stop.
    logins = checked(work, holds, list(cfg.forges), notify)
    work.spawn(logins, "the forges' logins and kept deliveries")
    pulls = PullMerges(clients.apis, ledger.forge)
    parts = ForgeParts(cfg.forges, ledger.forge, publisher, launcher, holds, work.lock, pulls)
    routes = tuple(webhook_routes(at, work, holds, ledger.forge))
    return Forged(work, desk, parts, routes, rounds, reviewing)


def _slugs(forge: str, repos: Mapping[str, RepoEntry]) -> list[Slug]:
    """The repositories of ``forge``, which its polling reads."""
    return [
        Slug.parse(slug)
        for repo in repos.values()
        if repo.forge == forge and (slug := repo.forge_slug()) is not None
    ]
