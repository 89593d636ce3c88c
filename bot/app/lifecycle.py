"""The app: one running Fleetwarden, and its lifecycle as a list of phases.

Config and logging are done by the entry point before. The app makes its own parts first
(:class:`~bot.app.grounds.Grounds`: the sandboxes, the hosts, serving, the stops), which
every phase takes. :meth:`App.start` then runs, in order, phases that each return what they
made: state-dir lock → ledger (:mod:`bot.app.phases.core.ledger`: the notifier and the
approvals service over it) → the agents' uid range held on the host
(:mod:`fleet.sandbox.host.uid_register`: before any phase may give an agent or a checkout a
uid) → the registry of the heartbeat endpoint's desks
(:class:`~bot.app.desks.Desks`) → the forges' clients (:mod:`bot.app.phases.forges.clients`:
a GitHub App's tokens, which the repositories' git uses, and the forge door) → the MCP
door (:mod:`bot.app.phases.core.mcp`, when the config has MCP servers) → heartbeat
endpoint (:mod:`bot.app.phases.core.heartbeats`, with the git door, the peer door, the
forge door and the MCP door) → repositories (:mod:`bot.app.phases.core.repos`, whose
checkouts' ``origin`` names the git door) → spend (:mod:`bot.app.phases.core.spend`: the
budgets, with a first pacing tick so the policy is current before any request; the book
of refused egress; then the metering proxy with that policy, that book and the runs' caps) → hosts
(:mod:`bot.app.phases.core.hosts`) → fleet (:mod:`bot.app.phases.fleet.launching`: the
sandbox probe; the launcher, the one admission over it and the fleet handed both;
reconcile; the feeds of its work and of its agents' asks, :mod:`bot.approvals`; the work
register; the cutoffs of the runs' caps carried out on it) →
peers (:mod:`bot.app.phases.fleet.peers`: the postbox between its agents and the tasks they
hand on) → cutoffs (:mod:`bot.app.phases.fleet.cutoffs`: the budgets' limits carried out on
the fleet) → forge work (:mod:`bot.app.phases.forges.work`: over the fleet; its webhook
routes and its rounds) → the review stage (:mod:`bot.app.phases.forges.review`: a second
agent's rounds before a human's) → commands (:mod:`bot.app.phases.serving.commands`: the
command families, ACL, router) → the dashboard (:mod:`bot.app.phases.serving.dashboard`; its
metrics count from the start; the webhooks are served on their own without it) → scheduler
(:mod:`bot.app.phases.serving.jobs`: the job context and the jobs, the forges' rounds and
the looks at the feed's logs, the dashboard's sessions, the hosts and the refused egress
among them) → connectors (:mod:`bot.app.phases.serving.connectors`,
behind the redactor) → operator schedules and the spawn queue (once the connectors run, so a
run made up at start, or a queued launch, can answer). Each phase takes what the phases
before it made; none is handed a callback to reach a part made after it. The endpoint's
doors reach parts made over the fleet (the repositories' lines, the postbox, forge work, the
review stage) through the registry of desks, each desk opened there once by the phase that
makes it (so are forge work's drafts, which the repositories' approval hold asks); a part
made later listens to an earlier one's events rather than being written into it; a capped
run is cut on the fleet by what the fleet phase has listen to the runs' caps. Each part is
added to the app's :class:`~bot.app.stops.Stops` as it is made;
:meth:`App.stop` stops them in reverse order after finishing the commands in flight, except
that the scheduler and the spawn queue stop before the connectors (nothing may answer
through a stopped one).

Inbound messages are served by :mod:`bot.app.serving` (a task each, in order within one
conversation). When a connector's inbound stream ends (console EOF or ``quit``), the app
finishes the commands in flight and stops.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.app import assembly as wiring
from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.lock import StateDirLock
from bot.app.own_files import refusal as own_files_refusal
from bot.app.phases.core.heartbeats import start_heartbeats
from bot.app.phases.core.hosts import make_hosts
from bot.app.phases.core.ledger import Ledgered, open_ledger, redact_register, redact_register_with
from bot.app.phases.core.mcp import make_mcp_door
from bot.app.phases.core.repos import open_repos, repo_verbs
from bot.app.phases.core.spend import start_spend
from bot.app.phases.fleet.cutoffs import enforce_cutoffs
from bot.app.phases.fleet.launching import Fleeted, start_fleet
from bot.app.phases.fleet.peers import Peered, start_peers
from bot.app.phases.forges.clients import open_forges
from bot.app.phases.forges.review import start_review
from bot.app.phases.forges.work import start_forges
from bot.app.phases.serving.commands import Commanded, Commands, make_commands
from bot.app.phases.serving.connectors import start_connectors
from bot.app.phases.serving.dashboard import dashboard_metrics, serve_pages
from bot.app.phases.serving.jobs import start_jobs
from bot.app.reload import NOT_RELOADED, reload_config
from bot.app.roster_edits import RosterKeeper, digests
from bot.app.serving import Serving
from bot.app.standby import Standby
from bot.app.stops import Stop, Stops
from bot.chat.notifier import Notifier
from bot.commands.errors import CommandError
from bot.commands.handlers.launches.spawn_queue import SpawnQueue
from bot.commands.handlers.overview import RosterFile
from bot.config import Config, Offered
from connectors.base import Connector
from connectors.receiving import ReceiveFailures
from fleet.approvals.service import Approvals
from fleet.backends.base import Backend
from fleet.ledger import Ledger
from fleet.notices import Notice
from fleet.peers.review.stage import ReviewStage
from fleet.redaction.redactor import Redactor
from fleet.repos.service import Repos
from fleet.runtimes import RuntimeRegistry, default_registry
from fleet.sandbox.service import Sandboxes
from fleet.supervisor.fleet import Fleet, RosterDiff
from fleet.timing.clock import Clock
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


@dataclass(frozen=True, slots=True)
class Running:
    """What the phases made that the app's callers reach (the fleet, the approvals, the
    scheduler, the queue, a reload's ACL and repositories): there once the commands are
    built."""

    ledgered: Ledgered
    fleeted: Fleeted
    peered: Peered
    commanded: Commanded
    repos: Repos | None = None


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
        self._given_connectors = list(connectors) if connectors is not None else None
        self._runtimes = runtimes or default_registry()
        self._backends = dict(backends) if backends is not None else wiring.default_backends(config)
        self._lock = StateDirLock(config.state_dir, ledger=config.ledger_path)
        self._sandboxes = Sandboxes(wiring.sandbox_settings(config, self._backends, environ))
        self._state = AppState.NEW
        self._stop_requested = asyncio.Event()
        self._standby = Standby(on_lost=self.request_stop)  # on a shared ledger
        self._app_hosts = make_hosts(
            config.hosts,
            self._backends,
            environ=environ,
            clock=clock,
            egress_door=self._sandboxes.egress_door,  # a locked agent's allow-list there
        )
        self._hosts = self._app_hosts.hosts
        self._metrics = dashboard_metrics()  # the dashboard's, counting from the start
        failures = ReceiveFailures(on_failure=self._metrics.receive_failed)
        self._serving = Serving(on_closed=self.request_stop, failures=failures)
        self._stops = self._parts_to_stop()
        self._grounds = Grounds(
            cfg=config,
            clock=clock,
            environ=environ,
            stops=self._stops,
            serving=self._serving,
            sandboxes=self._sandboxes,
            hosts=self._hosts,
            redactor=self._redactor,
            runtimes=self._runtimes,
            backends=self._backends,
        )
        self._running: Running | None = None
        # The roster's files as read now, so an edit from chat never overwrites a hand edit.
        self._roster_read = digests(config, environ)
        self._keeper: RosterKeeper | None = None
        # The review stage the agents' door takes verdicts to (none: nobody reviews).
        self.review_stage: ReviewStage | None = None

    def _parts_to_stop(self) -> Stops:
        """The parts made with the app, stopped however far its start went; each phase
        adds what it makes."""
        stops = Stops()
        stops.add(Stop.IN_FLIGHT, functools.partial(self._serving.finish, within=_DRAIN_TIMEOUT))
        stops.add(Stop.INBOUND, self._serving.close)
        stops.add(Stop.CONNECTORS, self._serving.stop_connectors)
        stops.add(Stop.SANDBOXES, self._sandboxes.stop)
        stops.add(Stop.HOSTS, self._app_hosts.stop)
        stops.add(Stop.STANDBY, self._standby.stop)
        stops.add(Stop.LOCK, self._lock.release)
        return stops

    @property
    def fleet(self) -> Fleet:
        return self._started().fleeted.fleet

    @property
    def approvals(self) -> Approvals:
        return self._started().ledgered.approvals

    @property
    def scheduler(self) -> FleetScheduler[JobContext]:
        """The running scheduler (to run a job now, or see when it runs next)."""
        return self._started().commanded.scheduler

    @property
    def queue(self) -> SpawnQueue:
        """The spawn queue (made with the fleet)."""
        return self._started().fleeted.queue

    @property
    def left_running(self) -> str | None:
        """What the fleet said, as it stopped, of the agents that keep running (``None``:
        none, or it never started)."""
        return None if self._running is None else self._running.fleeted.fleet.left_running

    def _started(self) -> Running:
        if self._running is None:
            raise RuntimeError("the app has not started")
        return self._running

    @property
    def reports_dir(self) -> Path:
        """Where pacing charts are written."""
        return self._grounds.reports_dir

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
        self._state, at = AppState.STARTING, self._grounds
        self._lock.acquire()
        ledgered = await open_ledger(at)
        if not await self._standby.become_active(ledgered.ledger, self._stop_requested):
            return  # stopped while standby: nothing else was started
        # This fleet's agent uids held on the host before anything may hand one out.
        await asyncio.to_thread(self._sandboxes.reserve)
        desks = Desks()  # what the endpoint's doors reach, each opened by the phase making it
        clients = await open_forges(at, desks)  # the Apps' tokens the repositories' git uses
        mcp = await make_mcp_door(at, ledgered, desks, self._metrics.mcp_called)
        heartbeats = await start_heartbeats(at, ledgered, desks, clients.door, mcp)
        repos = await open_repos(
            at, ledgered, desks, environ=clients.repo_environ, endpoint=heartbeats
        )
        verbs = repo_verbs(repos, at.clock, at, ledgered, desks)
        sink, notifier = self._metrics.sink, ledgered.notifier
        spend = await start_spend(at, ledgered.ledger, notifier, sink=sink)
        await self._app_hosts.start(heartbeats.port, spend.proxy.port if spend.proxy else None)
        fleeted = await start_fleet(at, ledgered, heartbeats, spend, repos, desks, mcp)
        peered = await start_peers(at, ledgered, fleeted, desks)
        await enforce_cutoffs(ledgered, spend, fleeted)
        forged = await start_forges(at, clients, ledgered, fleeted, spend, repos, verbs, desks)
        self.review_stage = await start_review(at, ledgered, fleeted, peered, repos, forged, desks)
        roster = self._roster_file(fleeted.fleet, repos)
        commanded = make_commands(at, ledgered, spend, fleeted, roster, verbs, forged.parts)
        self._running = Running(ledgered, fleeted, peered, commanded, repos)
        parts = (ledgered, spend, fleeted, peered, commanded.commands.signins, verbs, forged.routes)
        dashboard = await serve_pages(at, self._metrics, *parts)
        start_jobs(at, ledgered, spend, fleeted, commanded, forged.rounds, dashboard)
        secrets = (heartbeats, spend.proxy, spend.accounts, repos, clients.secrets)
        connectors = await self._start_connectors(at, ledgered.ledger, commanded.commands, secrets)
        await self._catch_up(ledgered.notifier, commanded.commands)
        self._state = AppState.RUNNING
        names = ", ".join(c.name for c in connectors) or "none"
        log.info("fleetwarden started: state dir %s, connectors: %s", self.config.state_dir, names)

    async def _start_connectors(
        self, at: Grounds, ledger: Ledger, commands: Commands, secrets: Sequence[object]
    ) -> tuple[Connector, ...]:
        """The connectors phase: the given connectors, or the config's, routed to
        ``commands``; a send that failed counted on the dashboard's metrics."""
        on_failure = self._metrics.send_failed
        given = self._given_connectors
        return await start_connectors(at, ledger, commands, given, secrets, on_failure)

    @property
    def stepped_down(self) -> bool:
        """Whether another orchestrator took the lease from this one while it ran."""
        return self._standby.stepped_down

    def _connectors(self) -> list[Connector]:
        """The running connectors, which notices and the agents' asks are posted through."""
        return self._serving.connectors

    async def _catch_up(self, notifier: Notifier, commands: Commands) -> None:
        """What waited for the connectors: the news held at boot, the sandbox problem, the
        stored operator schedules and the queued launches."""
        await notifier.release()
        await self._say_sandbox_problem(notifier)
        await self._restore_schedules(commands)
        await commands.queue.restore()  # queued launches start as slots allow

    async def _say_sandbox_problem(self, notifier: Notifier) -> None:
        """Tell the home rooms once, at start, when agents cannot be sandboxed here."""
        problem = self._sandboxes.problem
        if problem is not None:
            fix = self._sandboxes.fix
            text = f"Sandboxed agents cannot start on this host: {problem}. To fix: {fix}."
            delivery = await notifier.post(Notice(text, tone="warning", home_too=True))
            if not self._serving.connectors or not delivery.ok:  # else said once, in chat
                log.warning("agents cannot be sandboxed: %s; to fix: %s", problem, fix)

    async def _restore_schedules(self, commands: Commands) -> None:
        """Every stored operator schedule registered again (a run just missed made up)."""
        restored = await commands.schedules.restore()
        if restored:
            log.info("%d operator schedule(s) registered", restored)

    # -- stop -------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop what the start made, in the order of :class:`~bot.app.stops.Stop`.
        Idempotent."""
        if self._state in (AppState.STOPPING, AppState.STOPPED, AppState.NEW):
            self._state = AppState.STOPPED if self._state is AppState.NEW else self._state
            return
        self._state = AppState.STOPPING
        await self._stops.run()
        self._state = AppState.STOPPED
        log.info("fleetwarden stopped")

    # -- the config, again -----------------------------------------------------------------

    def _reloaded(self, fresh: Config) -> None:
        """The config read again: its secrets redacted from now on, in the register too."""
        assert self._running is not None
        redact_register_with(self._running.ledgered.ledger, self._redactor, fresh, self._environ)

    def _offered(self) -> Offered:
        """The runtimes and backends this app runs agents on, as a reloaded config may name."""
        return Offered(self._runtimes.names(), tuple(self._backends))

    def _roster_file(self, fleet: Fleet, repos: Repos | None) -> RosterFile | None:
        """What ``roster reload`` and ``roster add|set|remove`` run (``None`` without a
        config file)."""
        if self.config.source is None:
            return None
        self._keeper = RosterKeeper(
            self.config,
            self._environ,
            self._offered(),
            fleet,
            self.reload_config,
            repos,
            self._roster_read,
            self._redactor.redact,
        )
        return RosterFile(self.reload_config, self._keeper.edit)

    async def reload_config(self) -> RosterDiff:
        """Read the config file again; apply its roster, operators and new repositories, or
        change nothing on a problem or a change only a restart applies (``roster reload``,
        and SIGHUP: :mod:`bot.app.reload`)."""
        if self._running is None and self._state is AppState.STARTING:
            raise CommandError("Fleetwarden is still starting: reload the config once it runs")
        if self._running is None:
            raise CommandError("there is no config file to reload")
        # A folder or link made another uid's after the start would hand them the roster.
        if refused := await asyncio.to_thread(
            own_files_refusal, self.config, self._environ, NOT_RELOADED
        ):
            raise CommandError(refused)
        commands = self._running.commanded.commands
        diff = await reload_config(
            self.config,
            self._environ,
            self._offered(),
            self._running.fleeted.fleet,
            commands.acl,
            self._running.repos,
            read=self._reloaded,
        )
        if self._keeper is not None:  # the files as this reload read them
            self._keeper.remember()
        # The rows marked before the config named a secret it names now, redacted of it.
        await redact_register(self._running.ledgered.ledger)
        if commands.signins is not None:  # a changed role's sessions and links end for good
            await commands.signins.settle()
        try:  # who talks to whom now, in the live agents' PEERS.md
            await self._running.fleeted.peer_roster.rewrite()
        except Exception:  # the reload stands; their next launch writes the file
            log.exception("could not write the agents' peers after the reload")
        # What waits for a peer the reload took away is refused, saying so, not kept:
        # messages and the tasks handed on alike.
        await self._running.peered.postbox.sweep()
        await self._running.peered.handoff.sweep()
        return diff
