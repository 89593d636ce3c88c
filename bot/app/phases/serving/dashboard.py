"""The app's dashboard phase: the metrics registry (made first: the metering proxy and the
connectors report into it from their start) and, when the config has a ``dashboard:``
section, the web server over the running app's parts. Started after the commands (its
sign-ins are the ``dashboard`` command's), stopped before the connectors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import web

from bot import build
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.app.phases.fleet.launching import Fleeted
from bot.app.phases.fleet.peer_traffic import show_peer_traffic
from bot.app.phases.fleet.peers import Peered
from bot.app.stops import Stop
from bot.config import Config
from bot.dashboard.access.signin import SignIns
from bot.dashboard.pages.metrics import Metrics, ObservedSink, Write
from bot.dashboard.pages.stores import PageStores, TaskStores
from bot.dashboard.pages.views import PageSettings, Views
from bot.dashboard.serving.server import DashboardServer
from fleet.ledger.stores.operators.audit import ORCHESTRATOR_HOST
from fleet.repos.desk import RepoDesk


class AppDashboard:
    """The metrics, and the phase that starts the dashboard's server over them."""

    def __init__(self, config: Config, environ: Mapping[str, str]) -> None:
        self._config = config
        self._environ = environ
        running = build.current()
        self.metrics = Metrics(running.version, running.commit)

    def sink(self, write: Write) -> ObservedSink:
        """The metering proxy's ledger sink, its requests' latencies observed."""
        return ObservedSink(write, self.metrics)

    async def start(
        self,
        at: Grounds,
        ledgered: Ledgered,
        spend: Spend,
        fleeted: Fleeted,
        peered: Peered,
        signins: SignIns | None,
        repos: RepoDesk | None = None,
        webhooks: Sequence[web.RouteDef] = (),
    ) -> DashboardServer | None:
        """The server, serving (``None`` when the config has no dashboard). The fleet page
        shows what is wrong beyond the agents (a receive path that keeps failing);
        ``repos``: the repositories, for the change on an agent's page; ``webhooks``: the
        forges' webhook route, served on the dashboard's address."""
        cfg, fleet = self._config, fleeted.fleet
        if cfg.dashboard is None or signins is None:
            return None
        await signins.settle()  # roles the config changed while Fleetwarden was down
        pages = PageSettings(
            timezone=cfg.timezone,
            orchestrator=served_by_line,
            connector_named=at.serving.named,
            redact=at.redactor.redact,  # what chat would not show, the pages do not either
            links=at.serving.link_reports,
            enforce=cfg.document.enforce,
            build=build.current().as_json(),
        )
        views = Views(
            stores=PageStores(
                ledgered.ledger.agents,
                ledgered.ledger.approvals,
                ledgered.ledger.audit,
                ledgered.ledger.dashboard,
                ledgered.ledger.forge,
                ledgered.ledger.changes,
                TaskStores(
                    ledgered.ledger.tasks,
                    ledgered.ledger.missions,
                    ledgered.ledger.actuals,
                    ledgered.ledger.stages,
                ),
                ledgered.ledger.messages,
            ),
            fleet=fleet,
            budgets=spend.budgets,
            accounts=spend.accounts,
            hosts=at.hosts,
            clock=at.clock,
            pages=pages,
            problems=at.serving.failures.problems,
            repos=repos,
            forges=bool(cfg.forges),
        )
        server = DashboardServer(
            cfg.dashboard,
            views=views,
            signins=signins,
            metrics=self.metrics,
            state_dir=cfg.state_dir,
            environ=self._environ,
            webhooks=webhooks,
        )
        await server.start()
        fleet.subscribe(server.on_fleet_event)  # a page shows a start or an end at once
        show_peer_traffic(peered.postbox, server)  # both agents' pages at each message
        at.stops.add(Stop.DASHBOARD, server.stop)
        return server


def served_by_line() -> str:
    """The pages' line on where they are served from: the orchestrator's host."""
    return f"Served by the orchestrator on {ORCHESTRATOR_HOST}."
