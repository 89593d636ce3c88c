"""The app's dashboard phase: the metrics registry (:func:`dashboard_metrics`, made with the
app: the metering proxy and the connectors report into it from their start) and, when the
config has a ``dashboard:`` section, the web server over the running app's parts. Started
after the commands (its sign-ins are the ``dashboard`` command's), stopped before the
connectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from bot import build
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.app.phases.fleet.launching import Fleeted
from bot.app.phases.fleet.peer_traffic import show_peer_traffic
from bot.app.phases.fleet.peers import Peered
from bot.app.phases.forges.webhooks import serve_webhooks_alone
from bot.app.stops import Stop
from bot.dashboard.access.signin import SignIns
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.pages.places import Places
from bot.dashboard.pages.stores import PageStores, TaskStores
from bot.dashboard.pages.views import PageSettings, Views
from fleet.ledger.stores.operators.audit import ORCHESTRATOR_HOST
from fleet.repos.desk import RepoDesk

if TYPE_CHECKING:  # the server (and jinja2) loads only where a dashboard is configured
    from bot.dashboard.serving.server import DashboardServer


def dashboard_metrics() -> Metrics:
    """The app's metrics, of the build this process runs: made with the app, so the
    metering proxy and the connectors report into them from their start."""
    running = build.current()
    return Metrics(running.version, running.commit)


async def start_dashboard(
    at: Grounds,
    metrics: Metrics,
    ledgered: Ledgered,
    spend: Spend,
    fleeted: Fleeted,
    peered: Peered,
    signins: SignIns | None,
    repos: RepoDesk | None = None,
    webhooks: Sequence[web.RouteDef] = (),
) -> DashboardServer | None:
    """The server over ``metrics``, serving (``None`` when the config has no dashboard). The
    fleet page shows what is wrong beyond the agents (a receive path that keeps failing);
    ``repos``: the repositories, for the change on an agent's page; ``webhooks``: the
    forges' webhook route, served on the dashboard's address."""
    cfg, fleet = at.cfg, fleeted.fleet
    if cfg.dashboard is None or signins is None:
        return None
    from bot.dashboard.serving.server import DashboardServer

    await signins.settle()  # roles the config changed while Fleetwarden was down
    server = DashboardServer(
        cfg.dashboard,
        views=dashboard_views(at, ledgered, spend, fleeted, repos),
        signins=signins,
        metrics=metrics,
        state_dir=cfg.state_dir,
        environ=at.environ,
        webhooks=webhooks,
    )
    await server.start()
    fleet.subscribe(server.on_fleet_event)  # a page shows a start or an end at once
    show_peer_traffic(peered.postbox, server)  # both agents' pages at each message
    at.stops.add(Stop.DASHBOARD, server.stop)
    return server


async def serve_pages(
    at: Grounds,
    metrics: Metrics,
    ledgered: Ledgered,
    spend: Spend,
    fleeted: Fleeted,
    peered: Peered,
    signins: SignIns | None,
    repos: RepoDesk | None = None,
    webhooks: Sequence[web.RouteDef] = (),
) -> DashboardServer | None:
    """The dashboard, where the config has one (its listener serves the forges' ``webhooks``
    too); else the webhooks on a listener of their own (:func:`serve_webhooks_alone`)."""
    parts = (ledgered, spend, fleeted, peered, signins, repos, webhooks)
    dashboard = await start_dashboard(at, metrics, *parts)
    if dashboard is None:
        await serve_webhooks_alone(webhooks, state_dir=at.cfg.state_dir, stops=at.stops)
    return dashboard


def page_settings(at: Grounds) -> PageSettings:
    """How the pages show what they show: the config's zone and enforcement, the build,
    the connectors and their links, what is wrong beyond the agents, whether there are
    forges, redacted as chat is."""
    cfg = at.cfg
    return PageSettings(
        timezone=cfg.timezone,
        orchestrator=served_by_line,
        connector_named=at.serving.named,
        redact=at.redactor.redact,  # what chat would not show, the pages do not either
        links=at.serving.link_reports,
        enforce=cfg.document.enforce,
        build=build.current().as_json(),
        problems=at.serving.failures.problems,
        forges=bool(cfg.forges),
    )


def dashboard_views(
    at: Grounds, ledgered: Ledgered, spend: Spend, fleeted: Fleeted, repos: RepoDesk | None
) -> Views:
    """What the pages read: the ledger's stores, the fleet, the budgets and accounts, the
    hosts and the repositories (``None``: none)."""
    ledger = ledgered.ledger
    stores = PageStores(
        ledger.agents,
        ledger.approvals,
        ledger.audit,
        ledger.dashboard,
        ledger.forge,
        ledger.changes,
        TaskStores(ledger.tasks, ledger.missions, ledger.actuals, ledger.stages),
        ledger.messages,
    )
    return Views(
        stores=stores,
        fleet=fleeted.fleet,
        budgets=spend.budgets,
        places=Places(spend.accounts, at.hosts),
        clock=at.clock,
        pages=page_settings(at),
        repos=repos,
    )


def served_by_line() -> str:
    """The pages' line on where they are served from: the orchestrator's host."""
    return f"Served by the orchestrator on {ORCHESTRATOR_HOST}."
