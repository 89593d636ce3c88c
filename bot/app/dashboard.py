"""The app's dashboard phase: the metrics registry (made first: the metering proxy and the
connectors report into it from their start) and, when the config has a ``dashboard:``
section, the web server over the running app's parts. Started after the commands (its
sign-ins are the ``dashboard`` command's), stopped before the connectors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from aiohttp import web

from bot.app.stops import Stop, Stops
from bot.config import Config
from bot.dashboard.metrics import Metrics, ObservedSink, Write
from bot.dashboard.server import DashboardServer
from bot.dashboard.signin import SignIns
from bot.dashboard.views import Views
from connectors.base import Connector
from fleet.accounts.book import AccountBook
from fleet.budgets.service import BudgetService
from fleet.clock import Clock
from fleet.hosts.service import Hosts
from fleet.ledger import Ledger
from fleet.ledger.audit import ORCHESTRATOR_HOST
from fleet.repos.desk import RepoDesk
from fleet.supervisor.fleet import Fleet


class AppDashboard:
    """The metrics, and the phase that starts the dashboard's server over them."""

    def __init__(self, config: Config, environ: Mapping[str, str]) -> None:
        self._config = config
        self._environ = environ
        self.metrics = Metrics()

    def sink(self, write: Write) -> ObservedSink:
        """The metering proxy's ledger sink, its requests' latencies observed."""
        return ObservedSink(write, self.metrics)

    async def start(
        self,
        *,
        ledger: Ledger,
        fleet: Fleet,
        budgets: BudgetService | None,
        accounts: AccountBook | None,
        hosts: Hosts,
        clock: Clock,
        signins: SignIns | None,
        redact: Callable[[str], str],
        connector_named: Callable[[str], Connector | None],
        stops: Stops,
        problems: Callable[[], list[str]] = list,
        repos: RepoDesk | None = None,
        webhooks: Sequence[web.RouteDef] = (),
    ) -> DashboardServer | None:
        """The server, serving (``None`` when the config has no dashboard). ``problems``:
        what is wrong beyond the agents (a receive path that keeps failing), for the fleet
        page; ``repos``: the repositories, for the change on an agent's page; ``webhooks``: the
        forges' webhook route, served on the dashboard's address."""
        cfg = self._config
        if cfg.dashboard is None or signins is None:
            return None
        await signins.settle()  # roles the config changed while Fleetwarden was down
        views = Views(
            ledger=ledger,
            fleet=fleet,
            budgets=budgets,
            accounts=accounts,
            hosts=hosts,
            clock=clock,
            timezone=cfg.timezone,
            connector_named=connector_named,
            orchestrator=lambda: f"Served by the orchestrator on {ORCHESTRATOR_HOST}.",
            redact=redact,  # what chat would not show, the pages do not either
            problems=problems,
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
        stops.add(Stop.DASHBOARD, server.stop)
        return server
