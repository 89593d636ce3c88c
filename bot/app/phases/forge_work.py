"""The app's forge work phase: forge work over the fleet and the repositories
(:func:`start_forges`) with the desk the forge door reaches, the webhook endpoint's routes
— served on the dashboard's address, or on their own when the dashboard is off
(:func:`serve_webhooks_alone`) — and the rounds the scheduler runs
(:mod:`fleet.forge.runs.rounds`: the pollers, the round that keeps forge runs moving, the
Apps' tokens for git renewed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.phases.fleet import Fleeted
from bot.app.phases.forge import ForgeClients
from bot.app.phases.ledger import Ledgered
from bot.app.phases.repos import version
from bot.app.phases.spend import Spend
from bot.app.stops import Stop, Stops
from bot.chat.agent_text import quotes_escaped
from bot.commands.handlers.places.forge import ForgeParts
from bot.dashboard.serving.listener import Listening, listen, middleware
from bot.dashboard.serving.settings import DashboardSection
from bot.render.forge import no_run_news, pull_news
from fleet.forge.events.endpoint import Refusal, WebhookEndpoint, WebhookForge
from fleet.forge.events.holds import ForgeHolds
from fleet.forge.facts import NoRunNews, PullNews
from fleet.forge.fleet_launcher import FleetLauncher
from fleet.forge.posts.provenance import Expected, ProvenanceSource
from fleet.forge.posts.publish import Publisher, Tell
from fleet.forge.runs.desk import ForgeDesk
from fleet.forge.runs.polling import ForgePolling
from fleet.forge.runs.queued import QueuedRuns, queue_left_runs
from fleet.forge.runs.reviewing import ForgeReviewing
from fleet.forge.runs.rounds import Rounds
from fleet.forge.runs.watch import ForgeWatch
from fleet.forge.runs.work import ForgeWork
from fleet.forge.tasks import ForgeTasks
from fleet.ledger.records.forge import Slug
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.names import is_agent_name
from fleet.notices import Delivery, Notice
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
    # The forge's side of a review agent's rounds: its ``stage`` is set where the review
    # stage is made (until then no run is reviewed, and pull requests open as the forge says).
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
        fleet, repos, verbs, ledger.agents, ledger.runs, ledger.lines, fleet.admission, launches
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
        tell=_teller(notify),
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
    )
    publisher.reviewed = reviewing.reviewed  # a reviewed run's pull request: a draft
    publisher.on_published = reviewing.published  # each published done: the next round
    if repos.hold is not None:  # a head pushed past its approval: its pull request a draft first
        repos.hold.drafter = reviewing.hold_head
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
    checked = _checked(work, holds, list(cfg.forges), notify)
    work.spawn(checked, "the forges' logins and kept deliveries")
    parts = ForgeParts(cfg.forges, ledger.forge, publisher, launcher, holds, work.lock)
    routes = tuple(_webhook_routes(at, work, holds, ledger.forge))
    return Forged(work, desk, parts, routes, rounds, reviewing)


def _webhook_routes(
    at: Grounds, work: ForgeWork, holds: ForgeHolds, forge: ForgeStore
) -> list[web.RouteDef]:
    """The webhook endpoint's routes, for the forges with a webhook secret."""
    hooked = {
        name: WebhookForge(entry, at.environ.get(entry.webhook_secret_env, "").encode())
        for name, entry in at.cfg.forges.items()
        if entry.webhook_secret_env and at.environ.get(entry.webhook_secret_env)
    }
    if not hooked:
        return []

    async def audit(refusal: Refusal) -> None:
        detail = f"webhook refused ({refusal.status}): {refusal.why}"
        if refusal.status == 200:
            detail = f"webhook {refusal.delivery}: {refusal.why}"
        await forge.audit_forge(None, "-", "webhook", refusal.status == 200, detail)

    endpoint = WebhookEndpoint(
        hooked,
        receive=work.receive,
        seen=forge.take_delivery,
        audit=audit,
        clock=at.clock,
        held=holds.refusal,
    )
    return endpoint.routes()


async def serve_webhooks_alone(
    routes: Sequence[web.RouteDef], *, state_dir: Path, stops: Stops, address: str | None = None
) -> Listening | None:
    """Serve ``routes`` on the dashboard's default address (or ``address``), the dashboard
    being off: stopped in its place. ``None`` without routes."""
    if not routes:
        return None
    section = DashboardSection() if address is None else DashboardSection(listen=address)
    settings = section.settings(state_dir)
    app = web.Application(middlewares=[middleware(settings)])
    app.add_routes(list(routes))
    alone = await listen(app, settings)
    stops.add(Stop.DASHBOARD, alone.close)
    log.info("forge webhooks taken on %s:%s", settings.host, alone.port)
    return alone


def _slugs(forge: str, repos: Mapping[str, RepoEntry]) -> list[Slug]:
    """The repositories of ``forge``, which its polling reads."""
    return [
        Slug.parse(slug)
        for repo in repos.values()
        if repo.forge == forge and (slug := repo.forge_slug()) is not None
    ]


def _teller(notify: Callable[[Notice], Awaitable[object]] | None) -> Tell | None:
    """Chat's word on a forge run's pull request, into the agent's threads and the home
    rooms: an alert when it could not be opened (someone must fix why); and a warning on an
    issue given to no agent that can start there."""
    if notify is None:
        return None

    async def tell(news: PullNews | NoRunNews) -> None:
        if isinstance(news, NoRunNews):
            agents = (news.agent,) if is_agent_name(news.agent) else ()
            await notify(Notice(no_run_news(news), tone="warning", agents=agents))
            return
        failed = news.pull is None
        await notify(
            Notice(
                pull_news(news),
                tone="warning" if failed else "ok",
                agents=(news.agent,),
                alert=failed,
            )
        )

    return tell


async def _checked(
    work: ForgeWork,
    holds: ForgeHolds,
    forges: Sequence[str],
    notify: Callable[[Notice], Awaitable[object]] | None,
) -> None:
    """Each forge asked who its credential is, what is wrong said in chat (the home rooms
    and the console: an operator must act) — once: on the terminal's log lines only when no
    chat took it — then the deliveries kept from before the last stop."""
    for forge in forges:
        why = await holds.check_login(forge)
        if why is None:
            continue
        held = forge in holds.held
        said = None
        if notify is not None:  # the console is a connector: said there once, by this
            notice = Notice(
                f"⚠ {quotes_escaped(why)}", tone="error" if held else "warning", alert=held
            )
            said = await notify(notice)
        if not isinstance(said, Delivery) or not said.ok:  # no chat took it: the log says it
            log.log(logging.ERROR if held else logging.WARNING, "%s", why)
    await work.resume_kept()
