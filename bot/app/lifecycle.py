"""The app: one running Fleetwarden, and its lifecycle as a list of phases.

Config and logging are done by the entry point before. :meth:`App.start` then runs, in
order: state-dir lock → ledger (the notifier and the approvals service over it) → heartbeat
endpoint → budgets (a first pacing tick, so the policy is current before any request) →
metering proxy (with that policy) → fleet (the sandbox probe, reconcile; the feeds of its
work and of its agents' asks, :mod:`bot.approvals`) → commands (handlers, ACL, router) →
scheduler (the job context and the jobs) → the dashboard (:mod:`bot.app.dashboard`; its
metrics count from the start) → connectors (behind the redactor) → operator
schedules and the spawn queue (once the connectors run, so a run made up at start, or a
queued launch, can answer).
:meth:`App.stop` undoes them in reverse after finishing the commands in flight, except that
the scheduler and the spawn queue stop before the connectors (nothing may answer through a
stopped one).

Inbound messages are served by :mod:`bot.app.serving` (a task each, in order within one
conversation). When a connector's inbound stream ends (console EOF or ``quit``), the app
finishes the commands in flight and stops.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.app import assembly as wiring
from bot.app.dashboard import AppDashboard
from bot.app.hosts import AppHosts
from bot.app.jobs import add_app_jobs, app_job_context
from bot.app.lock import StateDirLock
from bot.app.serving import Serving
from bot.app.shared_tokens import SharedTokens
from bot.app.spend import start_budgets, start_metering
from bot.app.standby import Standby
from bot.approvals.wiring import attach_feed
from bot.chat import redacting
from bot.chat.agent_feed import AgentFeed
from bot.chat.notifier import Notifier
from bot.commands.acl import Acl
from bot.commands.errors import CommandError
from bot.commands.handlers.accounts import AccountCommands
from bot.commands.handlers.schedules import ScheduleCommands
from bot.commands.handlers.spawn_queue import SpawnQueue, spawn_queue
from bot.commands.handlers.watch_follow import ScreenFollower
from bot.commands.wiring import Commands, build_commands
from bot.config import Config
from bot.dashboard.signin import SignIns
from connectors.base import Connector
from connectors.receiving import ReceiveFailures
from fleet.accounts.book import AccountBook
from fleet.approvals.service import Approvals
from fleet.backends.base import Backend
from fleet.budgets.model import Scope
from fleet.budgets.policy import PacingPolicy
from fleet.budgets.run_watch import RunCapWatch
from fleet.budgets.service import BudgetService
from fleet.clock import Clock
from fleet.ledger import Ledger
from fleet.metering.proxy import MeteringProxy
from fleet.notices import Notice
from fleet.redaction.redactor import Redactor
from fleet.runtimes import RuntimeRegistry, default_registry
from fleet.sandbox.service import Sandboxes
from fleet.supervisor.cutoffs import CutoffKeeper
from fleet.supervisor.fleet import Fleet, RosterDiff
from fleet.watchdog.heartbeat import HeartbeatServer
from scheduler.context import JobContext
from scheduler.jobs import FleetScheduler

log = logging.getLogger(__name__)


_DRAIN_TIMEOUT = 60.0


class AppState(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class App:
    """One running Fleetwarden."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        environ: Mapping[str, str],
        connectors: Sequence[Connector] | None = None,
        runtimes: RuntimeRegistry | None = None,
        backends: Mapping[str, Backend] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.config = config
        self._redactor = redactor or wiring.redactor(config, environ)
        self._clock = clock
        self._environ = environ
        self._injected_connectors = list(connectors) if connectors is not None else None
        self._runtimes = runtimes or default_registry()
        self._backends = dict(backends) if backends is not None else wiring.default_backends(config)
        self._lock = StateDirLock(config.state_dir, ledger=config.ledger_path)
        self._ledger: Ledger | None = None
        self._notifier: Notifier | None = None
        self._approvals: Approvals | None = None  # the agents' asks, made with the ledger
        self._heartbeats: HeartbeatServer | None = None
        self._budgets: BudgetService | None = None
        self._metering: MeteringProxy | None = None
        self._run_caps: RunCapWatch | None = None  # each run's cap, armed as runs start
        self._accounts: AccountBook | None = None
        self._fleet: Fleet | None = None
        self._sandboxes = Sandboxes(wiring.sandbox_settings(config, self._backends, environ))
        self._follower: ScreenFollower | None = None
        self._feed: AgentFeed | None = None
        self._scheduler: FleetScheduler[JobContext] | None = None
        self._queue: SpawnQueue | None = None
        self._acl: Acl | None = None
        self._signins: SignIns | None = None  # the dashboard's, when it is on
        self._state = AppState.NEW
        self._stop_requested = asyncio.Event()
        self._standby = Standby(on_lost=self.request_stop)  # on a shared ledger
        self._app_hosts = AppHosts(
            config.hosts,
            self._backends,
            environ=environ,
            clock=clock,
            egress_door=self._sandboxes.egress_door,  # a locked agent's allow-list there
        )
        self._hosts = self._app_hosts.hosts
        self._dashboard = AppDashboard(config, environ)  # its metrics count from the start
        failures = ReceiveFailures(on_failure=self._dashboard.metrics.receive_failed)
        self._serving = Serving(on_closed=self.request_stop, failures=failures)

    @property
    def fleet(self) -> Fleet:
        if self._fleet is None:
            raise RuntimeError("the app has not started")
        return self._fleet

    @property
    def approvals(self) -> Approvals:
        if self._approvals is None:
            raise RuntimeError("the app has not started")
        return self._approvals

    @property
    def scheduler(self) -> FleetScheduler[JobContext]:
        """The running scheduler (to run a job now, or see when it runs next)."""
        if self._scheduler is None:
            raise RuntimeError("the app has not started")
        return self._scheduler

    @property
    def queue(self) -> SpawnQueue:
        """The spawn queue (made with the fleet)."""
        if self._queue is None:
            raise RuntimeError("the app has not started")
        return self._queue

    @property
    def reports_dir(self) -> Path:
        """Where pacing charts are written."""
        return self.config.state_dir / "reports"

    async def run(self) -> None:
        """Start, serve until asked to stop (or a connector's stream ends), then stop."""
        try:
            await self.start()
            await self._stop_requested.wait()
        finally:
            await self.stop()
        if self._serving.failure is not None:
            raise self._serving.failure  # a connector lost its service for good: say why

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop; safe from signal handlers."""
        self._stop_requested.set()

    # -- start, phase by phase ------------------------------------------------------------

    async def start(self) -> None:
        """Run the start phases in order (the module docstring says why this order)."""
        if self._state is not AppState.NEW:
            raise RuntimeError(f"App.start() in state {self._state.value}")
        self._state = AppState.STARTING
        self._lock.acquire()
        ledger, notifier = await self._open_ledger()
        if not await self._standby.become_active(ledger, self._stop_requested):
            return  # stopped while standby: nothing else was started
        heartbeats = await self._start_heartbeats(ledger)
        budgets = await self._start_budgets(ledger, notifier)
        await self._start_metering(ledger, budgets.policy, notifier)
        metering_port = self._metering.port if self._metering is not None else None
        await self._app_hosts.start(heartbeats.port, metering_port)
        fleet = await self._start_fleet(ledger, heartbeats)
        commands = self._build_commands(ledger, fleet, budgets)
        self._start_scheduler(ledger, notifier, fleet, budgets, commands)
        await self._dashboard.start(
            ledger=ledger,
            fleet=fleet,
            budgets=budgets,
            accounts=self._accounts,
            hosts=self._hosts,
            clock=self._clock,
            signins=commands.signins,
            redact=self._redactor.redact,
            connector_named=self._serving.named,
            problems=self._serving.failures.problems,
        )
        await self._start_connectors(ledger, commands)
        await notifier.release()
        await self._say_sandbox_problem(notifier)
        await self._restore_schedules(commands.schedules)
        await commands.queue.restore()  # queued launches start as slots allow
        self._state = AppState.RUNNING
        log.info(
            "fleetwarden started: state dir %s, connectors: %s",
            self.config.state_dir,
            ", ".join(c.name for c in self._serving.connectors) or "none",
        )

    async def _open_ledger(self) -> tuple[Ledger, Notifier]:
        """The ledger, opened and migrated; and the notifier, which finds threads in it."""
        self._ledger = await Ledger.connect(
            wiring.ledger_location(self.config, self._environ), self._clock
        )
        self._notifier = Notifier(self._ledger, lambda: self._serving.connectors)
        self._approvals = Approvals(self._ledger, self._clock)
        self._notifier.hold()  # news at boot waits for the connectors (see start)
        return self._ledger, self._notifier

    @property
    def stepped_down(self) -> bool:
        """Whether another orchestrator took the lease from this one while it ran."""
        return self._standby.stepped_down

    async def _start_heartbeats(self, ledger: Ledger) -> HeartbeatServer:
        """The loopback endpoint agents prove they are alive on."""

        self._heartbeats = wiring.heartbeat_server(self.config, ledger, self.approvals, self._clock)
        await self._heartbeats.start()
        return self._heartbeats

    async def _start_budgets(self, ledger: Ledger, notifier: Notifier) -> BudgetService:
        """The budgets (:mod:`bot.app.spend`): ticked once, so the policy is current
        before any request."""
        cfg, clock = self.config, self._clock
        self._budgets = await start_budgets(cfg, ledger, notifier, clock, self._served_by)
        return self._budgets

    def _served_by(self, agent: str) -> list[Scope]:
        """The host ``agent`` runs on, and the account and provider scopes its requests go
        through now."""
        pairs = self._accounts.accounts_of(agent) if self._accounts is not None else []
        host = [Scope("host", self._ledger.host_of(agent))] if self._ledger is not None else []
        return [
            *host,
            *(Scope("account", a) for _, a in pairs),
            *(Scope("provider", p) for p, _ in pairs),
        ]

    async def _start_metering(
        self, ledger: Ledger, policy: PacingPolicy, notifier: Notifier
    ) -> None:
        """The accounts and the metering proxy that holds their credentials, unless the
        config turns metering off (:mod:`bot.app.spend`)."""
        cfg, clock, sink = self.config, self._clock, self._dashboard.sink
        started = await start_metering(cfg, ledger, policy, notifier, clock, self._environ, sink)
        if started is not None:
            self._accounts, self._run_caps = started.accounts, started.run_caps
            self._metering = started.proxy

    async def _start_fleet(self, ledger: Ledger, heartbeats: HeartbeatServer) -> Fleet:
        """The supervisor: reconciles the ledger with what runs, and starts the roster's
        autostart agents. Its events become notices."""
        cfg = self.config
        await self._sandboxes.start(wiring.refusal_book(ledger, self._notifier, self._metering))
        # A locked agent's beats and model requests come through its doors: served there,
        # not piped to the ports.
        self._sandboxes.serve_in_place(heartbeats.port, heartbeats.connection)
        if self._metering is not None:
            self._sandboxes.serve_in_place(self._metering.port, self._metering.connection)
        sets = [("heartbeat", heartbeats.secrets)]
        if self._metering is not None:
            sets.append(("metering", self._metering.secrets))
        tokens = SharedTokens(ledger, sets)
        await tokens.start()  # a standby accepts the agents it takes over
        self._fleet = Fleet(
            ledger=ledger,
            runtimes=self._runtimes,
            backends=self._backends,
            settings=wiring.fleet_settings(cfg),
            clock=self._clock,
            environ=self._environ,
            roster=wiring.roster_of(cfg),
            heartbeats=heartbeats,
            provider_urls=self._metering,
            accounts=self._accounts,
            sandboxes=self._sandboxes,
            approvals=self.approvals,  # its live sessions open their CLIs' asks here
            hosts=self._hosts,
            publish_tokens=tokens.publish,
            run_caps=self._run_caps,  # armed in each launch, before the agent starts
        )
        heartbeats.take_asks(self._fleet.sessions.hook_asks.ask)  # TUIs' permission hooks
        assert self._notifier is not None
        self._feed = AgentFeed(
            self._fleet, self._notifier.post, self._clock, typing=self._notifier.typing
        )
        self._fleet.subscribe(self._feed.on_fleet_event)
        connectors = lambda: self._serving.connectors  # noqa: E731
        attach_feed(cfg, self.approvals, ledger, self._fleet, self._notifier, connectors)
        if self._run_caps is not None:
            self._run_caps.attach(self._fleet)
        self._queue = spawn_queue(
            cfg, ledger, self._fleet, self._accounts, self._clock, self._notifier
        )
        self._fleet.set_gate(self._queue)  # autostart beyond a cap waits in the queue
        await self._fleet.start()
        await self._feed.follow_running()
        if self._budgets is not None:
            await self._budgets.enforce_with(CutoffKeeper(self._fleet))
        return self._fleet

    def _build_commands(self, ledger: Ledger, fleet: Fleet, budgets: BudgetService) -> Commands:
        """Handlers, the ACL, the grammars and the router (:mod:`bot.commands.wiring`). The
        scheduler is made here (not started): ``schedule`` commands and deferred spawns add
        jobs."""
        self._scheduler = FleetScheduler()
        self._follower = ScreenFollower(fleet, ledger, self._serving.named)
        built = build_commands(
            self.config,
            ledger=ledger,
            fleet=fleet,
            budgets=budgets,
            scheduler=self._scheduler,
            follower=self._follower,
            clock=self._clock,
            reports_dir=self.reports_dir,
            reload_roster=self.reload_config if self.config.source is not None else None,
            accounts=self._accounts,
            queue=self.queue,
            connector_named=self._serving.named,
            sandboxes=self._sandboxes,
            notices=self._notifier,
            ordering=self._notifier.ordering if self._notifier is not None else None,
            approvals=self.approvals,
            hosts=self._hosts,
            problems=self._serving.failures.problems,
        )
        self._serving.router = built.router
        self._acl = built.acl  # a roster reload applies the operators to it
        self._signins = built.signins
        return built

    def _start_scheduler(
        self,
        ledger: Ledger,
        notifier: Notifier,
        fleet: Fleet,
        budgets: BudgetService,
        commands: Commands,
    ) -> None:
        """The job context, the app's own jobs (:mod:`bot.app.jobs`), and the scheduler
        running them."""
        cfg, scheduler = self.config, self.scheduler
        context = app_job_context(
            cfg,
            scheduler=scheduler,
            clock=self._clock,
            ledger=ledger,
            fleet=fleet,
            budgets=budgets,
            notices=notifier,
            router=commands.router,
            queue=commands.queue,
            approvals=self.approvals,
            reports_dir=self.reports_dir,
            accounts_text=AccountCommands(self._accounts).text,
            connector_named=self._serving.named,
        )
        add_app_jobs(scheduler, cfg)
        scheduler.start(context)

    async def _start_connectors(self, ledger: Ledger, commands: Commands) -> None:
        """Each connector started in turn, redacted, with a task reading its inbound stream."""
        made = self._injected_connectors
        if made is None:
            made = wiring.make_connectors(
                self.config,
                ledger=ledger,
                acl=commands.acl,
                clock=self._clock,
                environ=self._environ,
                failures=self._serving.failures,
            )
        sources = (self._heartbeats, self._metering, self._accounts)
        failed = self._dashboard.metrics.send_failed
        await self._serving.start(redacting.guard(made, self._redactor, sources, on_failure=failed))

    async def _say_sandbox_problem(self, notifier: Notifier) -> None:
        """Tell the home rooms once, at start, when agents cannot be sandboxed here."""
        problem = self._sandboxes.problem
        if problem is not None:
            fix = self._sandboxes.fix
            text = f"Sandboxed agents cannot start on this host: {problem}. To fix: {fix}."
            delivery = await notifier.post(Notice(text, tone="warning", home_too=True))
            if not self._serving.connectors or not delivery.ok:  # else said once, in chat
                log.warning("agents cannot be sandboxed: %s; to fix: %s", problem, fix)

    async def _restore_schedules(self, schedules: ScheduleCommands) -> None:
        """Every stored operator schedule registered again (a run just missed made up)."""
        restored = await schedules.restore()
        if restored:
            log.info("%d operator schedule(s) registered", restored)

    # -- stop -------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop in reverse order of start. Idempotent."""
        if self._state in (AppState.STOPPING, AppState.STOPPED, AppState.NEW):
            self._state = AppState.STOPPED if self._state is AppState.NEW else self._state
            return
        self._state = AppState.STOPPING
        await self._drain()
        # The scheduler before the connectors: a job that fired now (a schedule, the
        # watchdog's notices) would answer through a stopped connector.
        if self._scheduler is not None:
            await self._scheduler.shutdown()
        if self._queue is not None:
            await self._queue.stop()
        await self._dashboard.stop()  # its streams closed before what they show stops
        await self._serving.stop_connectors()
        if self._fleet is not None:
            await self._fleet.stop()
        await self._sandboxes.stop()  # the doors of locked agents; they reopen on reattach
        if self._metering is not None:
            await self._metering.stop()  # writes every metered request before the ledger closes
        if self._budgets is not None:
            await self._budgets.drain()  # limit notices a request caused
        if self._run_caps is not None:
            await self._run_caps.drain()
        if self._accounts is not None:
            await self._accounts.stop()  # and what the accounts learned
        await self._app_hosts.stop()
        if self._heartbeats is not None:
            await self._heartbeats.stop()
        await self._standby.stop()  # the lease released: a standby takes over at once
        if self._ledger is not None:
            await self._ledger.close()
        self._lock.release()
        self._state = AppState.STOPPED
        log.info("fleetwarden stopped")

    async def _drain(self) -> None:
        """Finish what operators already asked for, then stop listening."""
        await self._serving.finish(within=_DRAIN_TIMEOUT)
        if self._follower is not None:
            await self._follower.stop()
        if self._feed is not None:
            await self._feed.stop()
        if self._notifier is not None:  # notices that waited on an answer cut short
            await self._notifier.ordering.drain()
        await self._serving.close()

    # -- the config, again -----------------------------------------------------------------

    async def reload_config(self) -> RosterDiff:
        """Read the config file again; apply its roster and operators, or change nothing on
        a problem (``roster reload``, and SIGHUP)."""
        if self._fleet is None:
            raise CommandError("there is no config file to reload")
        diff = await wiring.reload_roster(
            self.config,
            self._environ,
            self._runtimes.names(),
            tuple(self._backends),
            self._fleet,
            self._acl,
        )
        if self._signins is not None:  # a changed role's sessions and links end for good
            await self._signins.settle()
        return diff
