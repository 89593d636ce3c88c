"""The app: wires config, ledger, fleet and connectors, and owns their lifecycle.

Start phases, in order (config and logging are done by the entry point before):
state-dir lock → ledger → fleet (reconcile) → scheduler → connectors → operator schedules
→ serving. Stop runs the same phases in reverse, except that the scheduler stops before the
connectors (a job must not answer through a stopped one). Each inbound message is
handled in its own task, in order within one conversation (connector, room, thread), so
a slow ``stop`` in one room does not hold up another. When a connector's inbound stream
ends (console EOF or ``quit``), the app finishes the commands in flight and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from bot import render, render_budgets
from bot.acl import Acl, Grant, Role
from bot.commands import COMMANDS
from bot.config import Config, ConfigError, load_config
from bot.errors import CommandError
from bot.grammar import Grammar
from bot.handlers import Handlers
from bot.lock import StateDirLock
from bot.router import Delegated, Router
from bot.schedules import ScheduleCommands, ScheduledRuns
from connectors.base import (
    Connector,
    InboundMessage,
    OutboundMessage,
    RoomId,
    ThreadId,
    Tone,
    UserId,
)
from connectors.console import ConsoleConnector
from fleet.backends.base import Backend
from fleet.backends.process import SubprocessBackend
from fleet.backends.tmux import TmuxBackend
from fleet.clock import Clock
from fleet.errors import FleetError, FleetwardenError, UnknownAgent
from fleet.heartbeat import HeartbeatServer
from fleet.ledger import Ledger
from fleet.metering.config import DEFAULT_ROUTES
from fleet.metering.proxy import MeteringProxy
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.runtimes import RuntimeRegistry, default_registry
from fleet.supervisor import Fleet, FleetEvent, FleetSettings, RosterDiff
from scheduler.budget_model import Transition
from scheduler.budget_service import BudgetService
from scheduler.deferred import DEFERRED_JOB_REF
from scheduler.jobs import (
    WATCHDOG_JOB_REF,
    FleetScheduler,
    register_context,
    unregister_context,
)
from scheduler.maintenance import PRUNE_EVERY, PRUNE_JOB_ID, PRUNE_JOB_REF
from scheduler.pacing_job import PACING_JOB_ID, PACING_JOB_REF, RESET_JOB_ID
from scheduler.pacing_policy import PacingPolicy
from scheduler.report_job import REPORT_JOB_ID, REPORT_JOB_REF, HomeRooms

log = logging.getLogger(__name__)

_DRAIN_TIMEOUT = 60.0
_FOLLOW_INTERVAL = 10.0  # `watch --follow`: look this often...
_FOLLOW_UPDATES = 30  # ...this many times at most (5 minutes)


class AppState(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


ConversationKey = tuple[str, str, str | None]


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
    ) -> None:
        self.config = config
        self._clock = clock
        self._environ = environ
        self._injected_connectors = list(connectors) if connectors is not None else None
        self._connectors: list[Connector] = []
        self._runtimes = runtimes or default_registry()
        self._backends = dict(backends) if backends is not None else default_backends(config)
        self._lock = StateDirLock(config.state_dir)
        self._ledger: Ledger | None = None
        self._heartbeats: HeartbeatServer | None = None
        self._metering: MeteringProxy | None = None
        self._budgets: BudgetService | None = None
        self._scheduler: FleetScheduler | None = None
        self._context_name = ""
        self._schedules_name = ""  # the context operator schedules' jobs find their runner by
        self._pacing_name = ""  # ... the pacing tick its budgets by
        self._report_name = ""  # ... the report its book and rooms by
        self._deferred_name = ""  # ... deferred launches the app by
        self._upkeep_name = ""  # ... the daily ledger upkeep the ledger by
        self._fleet: Fleet | None = None
        self._router: Router | None = None
        self._state = AppState.NEW
        self._stop_requested = asyncio.Event()
        self._failure: FleetwardenError | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._consumers: set[asyncio.Task[None]] = set()
        self._followers: set[asyncio.Task[None]] = set()  # `watch --follow` updates
        self._conversations: dict[ConversationKey, asyncio.Lock] = {}
        self._started_connectors: list[Connector] = []

    def _make_connectors(self, ledger: Ledger, acl: Acl) -> list[Connector]:
        """The connectors the config lists, in start order."""
        cfg = self.config
        connectors: list[Connector] = []
        if cfg.console is not None:
            connectors.append(ConsoleConnector(cfg.console, self._clock))
        if cfg.matrix is not None:
            from connectors.matrix.connector import MatrixConnector

            connectors.append(
                MatrixConnector(
                    cfg.matrix,
                    state=ledger,
                    clock=self._clock,
                    environ=self._environ,
                    state_dir=cfg.state_dir,
                    is_operator=lambda user: acl.role_of("matrix", user) is not None,
                    default_command_prefix=cfg.command_prefix,
                )
            )
        if cfg.discord is not None:
            from connectors.discord.connector import DiscordConnector

            connectors.append(
                DiscordConnector(
                    cfg.discord,
                    threads=ledger,
                    environ=self._environ,
                    is_operator=lambda user, groups: (
                        acl.role_of("discord", user, groups) is not None
                    ),
                    default_command_prefix=cfg.command_prefix,
                )
            )
        return connectors

    def _prefixes(self) -> dict[str, str]:
        """Connectors whose command prefix differs from the top-level one."""
        own = {"matrix": self.config.matrix, "discord": self.config.discord}
        return {
            name: section.command_prefix
            for name, section in own.items()
            if section is not None and section.command_prefix is not None
        }

    @property
    def fleet(self) -> Fleet:
        if self._fleet is None:
            raise RuntimeError("the app has not started")
        return self._fleet

    @property
    def scheduler(self) -> FleetScheduler:
        """The running scheduler (to run a job now, or see when it runs next)."""
        if self._scheduler is None:
            raise RuntimeError("the app has not started")
        return self._scheduler

    async def run(self) -> None:
        """Start, serve until asked to stop (or a connector's stream ends), then stop."""
        try:
            await self.start()
            await self._stop_requested.wait()
        finally:
            await self.stop()
        if self._failure is not None:
            raise self._failure  # a connector lost its service for good: exit saying why

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop; safe from signal handlers."""
        self._stop_requested.set()

    async def start(self) -> None:
        if self._state is not AppState.NEW:
            raise RuntimeError(f"App.start() in state {self._state.value}")
        self._state = AppState.STARTING
        cfg = self.config
        self._lock.acquire()
        self._ledger = await Ledger.open(cfg.ledger_path, self._clock)
        self._heartbeats = HeartbeatServer(cfg.state_dir, self._on_beat)
        await self._heartbeats.start()
        # Budgets: the policy the proxy consults, kept current by the pacing tick.
        policy = PacingPolicy(cfg.groups, tz=cfg.timezone)
        self._budgets = BudgetService(
            ledger=self._ledger,
            budgets=cfg.budgets,
            groups=cfg.groups,
            timezone=cfg.timezone,
            clock=self._clock,
            policy=policy,
            announce=self._announce,
        )
        await self._budgets.start()
        if cfg.metering is not None:
            self._metering = MeteringProxy(
                cfg.state_dir,
                routes=cfg.providers,
                sink=self._ledger.record_metering,
                settings=cfg.metering,
                prices=cfg.prices,
                policy=policy,
                clock=self._clock,
            )
            await self._metering.start()
        self._fleet = Fleet(
            ledger=self._ledger,
            runtimes=self._runtimes,
            backends=self._backends,
            settings=FleetSettings(
                state_dir=cfg.state_dir,
                default_runtime=cfg.defaults.runtime,
                default_backend=cfg.defaults.backend,
                stop_grace=cfg.defaults.stop_grace_seconds,
                reply_wait=cfg.defaults.send_reply_wait_seconds,
                heartbeat_timeout=cfg.defaults.heartbeat_timeout_seconds,
                provider_urls=direct_provider_urls(cfg),
            ),
            clock=self._clock,
            environ=self._environ,
            roster=roster_of(cfg),
            heartbeats=self._heartbeats,
            provider_urls=self._metering,
        )
        self._fleet.subscribe(self._on_fleet_event)
        await self._fleet.start()
        # The watchdog: jobs are referenced by import path, so the fleet they act on is
        # registered under a name unique to this app.
        self._context_name = f"fleet-{id(self):x}"
        register_context(self._context_name, self._fleet)
        self._scheduler = FleetScheduler()
        self._scheduler.start()
        self._scheduler.add_interval(
            "watchdog",
            WATCHDOG_JOB_REF,
            cfg.defaults.watchdog_interval_seconds,
            {"fleet": self._context_name},
        )
        self._pacing_name = f"pacing-{id(self):x}"
        register_context(self._pacing_name, _PacingDesk(self, self._budgets))
        self._scheduler.add_interval(
            PACING_JOB_ID,
            PACING_JOB_REF,
            cfg.pacing.tick_seconds,
            {"context": self._pacing_name},
        )
        self._upkeep_name = f"upkeep-{id(self):x}"
        register_context(self._upkeep_name, _Upkeep(self._ledger, self._clock))
        self._scheduler.add_interval(
            PRUNE_JOB_ID, PRUNE_JOB_REF, PRUNE_EVERY, {"context": self._upkeep_name}
        )
        self._deferred_name = f"deferred-{id(self):x}"
        register_context(self._deferred_name, self)
        self._report_name = f"report-{id(self):x}"
        register_context(
            self._report_name,
            HomeRooms(self._budgets, lambda: self._started_connectors, self.reports_dir),
        )
        self._scheduler.add_cron(
            REPORT_JOB_ID,
            REPORT_JOB_REF,
            cfg.pacing.report_cron,
            {"context": self._report_name},
            timezone=cfg.timezone,
            misfire_grace_time=3600,
        )
        handlers = Handlers(
            fleet=self._fleet,
            specs=COMMANDS,
            clock=self._clock,
            prefix=cfg.command_prefix,
            logs_lines=cfg.defaults.logs_lines,
            reload_roster=self._reload_roster if cfg.source is not None else None,
            follow_screen=self._follow_screen,
            budgets=self._budgets,
            reports_dir=self.reports_dir,
            defer=self._defer_spawn,
        )
        acl = Acl(Grant(op.id, Role(op.role), op.connector) for op in cfg.effective_operators())
        grammar = Grammar(COMMANDS, prefix=cfg.command_prefix)
        grammars = {name: Grammar(COMMANDS, prefix=p) for name, p in self._prefixes().items()}
        # Operator schedules: their crontab times are read, and shown, in this zone.
        zone = cfg.timezone
        self._schedules_name = f"schedules-{id(self):x}"
        schedules = ScheduleCommands(
            ledger=self._ledger,
            scheduler=self._scheduler,
            grammar_for=lambda connector: grammars.get(connector, grammar),
            clock=self._clock,
            timezone=zone,
            runner=self._schedules_name,
        )
        self._router = Router(
            grammar=grammar,
            grammars=grammars,
            acl=acl,
            handlers={**handlers.table(), **schedules.table()},
            ledger=self._ledger,
        )
        register_context(
            self._schedules_name,
            ScheduledRuns(
                ledger=self._ledger,
                router=self._router,
                connector_named=self._started_connector,
                clock=self._clock,
                timezone=zone,
            ),
        )
        self._connectors = (
            self._injected_connectors
            if self._injected_connectors is not None
            else self._make_connectors(self._ledger, acl)
        )
        for connector in self._connectors:
            await connector.start()
            self._started_connectors.append(connector)
            task = asyncio.create_task(self._consume(connector), name=f"inbound-{connector.name}")
            self._consumers.add(task)
            task.add_done_callback(self._consumers.discard)
        # Once the connectors run, so a run made up at start has somewhere to answer.
        restored = await schedules.restore()
        if restored:
            log.info("%d operator schedule(s) registered", restored)
        self._state = AppState.RUNNING
        log.info(
            "fleetwarden started: state dir %s, connectors: %s",
            cfg.state_dir,
            ", ".join(c.name for c in self._connectors) or "none",
        )

    async def stop(self) -> None:
        """Stop in reverse order of start. Idempotent."""
        if self._state in (AppState.STOPPING, AppState.STOPPED, AppState.NEW):
            self._state = AppState.STOPPED if self._state is AppState.NEW else self._state
            return
        self._state = AppState.STOPPING
        # Finish what operators already asked for, then stop listening.
        if self._in_flight:
            _, pending = await asyncio.wait(set(self._in_flight), timeout=_DRAIN_TIMEOUT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for task in [*self._consumers, *self._followers]:
            task.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)
        await asyncio.gather(*self._consumers, return_exceptions=True)
        # The scheduler before the connectors: a job that fired now (a schedule, the
        # watchdog's notices) would answer through a stopped connector.
        if self._scheduler is not None:
            await self._scheduler.shutdown()
            unregister_context(self._context_name)
            unregister_context(self._schedules_name)
            unregister_context(self._pacing_name)
            unregister_context(self._report_name)
            unregister_context(self._deferred_name)
            unregister_context(self._upkeep_name)
        for connector in reversed(self._started_connectors):
            try:
                await connector.stop()
            except Exception:
                log.exception("connector %s did not stop cleanly", connector.name)
        if self._fleet is not None:
            await self._fleet.stop()
        if self._metering is not None:
            await self._metering.stop()  # writes every metered request before the ledger closes
        if self._heartbeats is not None:
            await self._heartbeats.stop()
        if self._ledger is not None:
            await self._ledger.close()
        self._lock.release()
        self._state = AppState.STOPPED
        log.info("fleetwarden stopped")

    def _started_connector(self, name: str) -> Connector | None:
        """The running connector called ``name``, if there is one."""
        return next((c for c in self._started_connectors if c.name == name), None)

    async def _consume(self, connector: Connector) -> None:
        try:
            async for message in connector.inbound():
                task = asyncio.create_task(self._handle(connector, message))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
        except asyncio.CancelledError:
            raise
        except FleetwardenError as exc:  # the service is lost for good, and says why
            log.error("connector %s stopped: %s", connector.name, exc)
            self._failure = self._failure or exc
        except Exception:
            log.exception("connector %s failed", connector.name)
        log.info("connector %s closed its inbound stream; stopping", connector.name)
        self.request_stop()

    async def _handle(self, connector: Connector, message: InboundMessage) -> None:
        key = (message.connector, message.room, message.thread_id)
        lock = self._conversations.setdefault(key, asyncio.Lock())
        async with lock:
            if self._router is None:
                return
            try:
                await self._router.handle(connector, message)
            except Exception:
                log.exception("could not answer a message on %s", connector.name)

    def _follow_screen(self, message: InboundMessage, agent: str, first: str) -> None:
        """Start posting ``agent``'s screen where ``message`` came from, when it changes."""
        task = asyncio.create_task(self._screen_updates(message, agent, first))
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def _screen_updates(self, message: InboundMessage, agent: str, last: str) -> None:
        connector = next(c for c in self._started_connectors if c.name == message.connector)
        for _ in range(_FOLLOW_UPDATES):
            await asyncio.sleep(_FOLLOW_INTERVAL)
            if self._fleet is None or self._ledger is None:
                return
            try:
                status = await self._fleet.status(agent)
                screen = await self._fleet.snapshot(agent)
            except FleetError:
                return
            if screen != last:
                last = screen
                thread = message.thread_id or await self._ledger.thread_for_topic(
                    message.connector, message.room, agent
                )
                await connector.send(
                    OutboundMessage(
                        room=message.room,
                        markdown=render.screen(agent, screen),
                        thread_id=ThreadId(thread) if thread else None,
                    )
                )
            if not status.state.is_live:
                return

    async def _on_beat(self, agent: str, kind: str) -> None:
        if self._ledger is not None:
            with contextlib.suppress(UnknownAgent):  # a beat from an agent we forgot
                await self._ledger.record_heartbeat(agent, kind)

    async def _reload_roster(self) -> RosterDiff:
        """Read the config file again; apply its roster, or change nothing on a problem."""
        source = self.config.source
        if source is None or self._fleet is None:
            raise CommandError("there is no config file to reload")
        try:
            fresh = await asyncio.to_thread(
                load_config,
                source,
                self._environ,
                runtimes=self._runtimes.names(),
                backends=tuple(self._backends),
            )
        except ConfigError as exc:
            raise CommandError(f"the roster was not reloaded; nothing changed: {exc}") from exc
        return await self._fleet.apply_roster(roster_of(fresh))

    async def _defer_spawn(self, message: InboundMessage, at: datetime) -> None:
        """Arm ``message``'s command to run again at ``at``, as its sender, in its room."""
        job = f"deferred-{uuid.uuid4().hex[:12]}"
        self.scheduler.add_date(
            job,
            DEFERRED_JOB_REF,
            at,
            {
                "runner": self._deferred_name,
                "connector": message.connector,
                "sender": message.sender,
                "room": message.room,
                "text": message.text,
                "job": job,
            },
        )

    async def run_deferred(
        self, *, connector: str, sender: str, room: str, text: str, job: str
    ) -> None:
        """The deferred job's work (see :mod:`scheduler.deferred`)."""
        target = self._started_connector(connector)
        if target is None or self._router is None:
            log.warning("a deferred command could not run: connector %s is gone", connector)
            return
        run = Delegated(
            sender=UserId(sender),
            room=RoomId(room),
            text=text,
            event_id=f"{job}:run",
            source="deferred",
            at=self._clock.now(),
            heading="Deferred launch, tried again:",
        )
        await self._router.run_as(target, run)

    async def _announce(self, transition: Transition) -> None:
        await self.post(
            transition.message,
            agents=transition.agents,
            tone=render_budgets.transition_tone(transition),
        )

    @property
    def pacing_context(self) -> str:
        """The context name the pacing jobs find the budgets under."""
        return self._pacing_name

    @property
    def reports_dir(self) -> Path:
        """Where pacing charts are written."""
        return self.config.state_dir / "reports"

    async def _on_fleet_event(self, event: FleetEvent) -> None:
        """Tell operators what happened to an agent: in its threads, else the home room."""
        if event.by_operator:
            return  # the operator already got the answer to their command
        await self.post(
            render.fleet_event(event),
            agents=(event.agent,),
            room_too=False,
            tone=render.fleet_event_tone(event),
        )

    async def post(
        self,
        markdown: str,
        *,
        agents: Sequence[str] = (),
        room_too: bool = True,
        images: tuple[Path, ...] = (),
        tone: Tone | None = None,
    ) -> None:
        """Post a notice on every connector: into the threads of ``agents`` and, with
        ``room_too`` (or where none of them has a thread), into the home room."""
        if self._ledger is None:
            return
        for connector in self._started_connectors:
            targets: list[tuple[RoomId, ThreadId | None]] = []
            for agent in agents:
                threads = await self._ledger.threads_for_topic(connector.name, agent)
                targets += [(RoomId(room), ThreadId(thread)) for room, thread in threads]
            if (room_too or not targets) and connector.home_room is not None:
                targets.append((connector.home_room, None))
            for room, thread in dict.fromkeys(targets):
                message = OutboundMessage(
                    room=room, markdown=markdown, thread_id=thread, images=images, tone=tone
                )
                try:
                    await connector.send(message)
                except Exception:
                    log.exception("could not post a notice on %s", connector.name)


def roster_of(config: Config) -> dict[AgentName, AgentSpec]:
    """The config's roster as launch specs."""
    return {entry.name: entry.to_spec(config.defaults) for entry in config.agents}


def tmux_socket_name(state_dir: Path) -> str:
    """The private tmux server of the Fleetwarden that owns ``state_dir``."""
    return f"fleetwarden-{hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]}"


def default_backends(config: Config) -> dict[str, Backend]:
    """Subprocess agents, and tmux agents on a tmux server private to this state dir."""
    return {
        "subprocess": SubprocessBackend(),
        "tmux": TmuxBackend(tmux_socket_name(config.state_dir)),
    }


def direct_provider_urls(cfg: Config) -> dict[str, str]:
    """With metering off, agents go straight to the providers the config changed (the
    built-in ones stay the CLIs' own defaults)."""
    return {
        name: route.upstream
        for name, route in cfg.providers.items()
        if DEFAULT_ROUTES.get(name) != route
    }


class _PacingDesk:
    """What the pacing tick job needs of the app (see :mod:`scheduler.pacing_job`)."""

    def __init__(self, app: App, book: BudgetService) -> None:
        self._app = app
        self._book = book

    async def tick(self) -> list[Transition]:
        return await self._book.tick()

    def next_reset(self) -> datetime | None:
        return self._book.next_reset()

    async def post_transition(self, transition: Transition) -> None:
        await self._app.post(
            transition.message,
            agents=transition.agents,
            tone=render_budgets.transition_tone(transition),
        )  # as App._announce

    def schedule_reset(self, at: datetime) -> None:
        self._app.scheduler.add_date(
            RESET_JOB_ID, PACING_JOB_REF, at, {"context": self._app.pacing_context}
        )


class _Upkeep:
    """What the daily ledger upkeep job needs (see :mod:`scheduler.maintenance`)."""

    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self._ledger = ledger
        self._clock = clock

    async def prune_events(self, before: datetime) -> int:
        return await self._ledger.prune_events(before)

    def now(self) -> datetime:
        return self._clock.now()
