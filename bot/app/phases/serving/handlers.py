"""The commands phase of the app: handlers, the ACL, a grammar per connector prefix,
operator schedules, the spawn queue and the router over them, built from what the phases
before made."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot import build
from bot.acl import Acl
from bot.app import assembly as wiring
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.app.phases.fleet.approval_desk import medium
from bot.app.phases.fleet.launching import Fleeted
from bot.app.stops import Stop
from bot.commands import registry
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.forget import ForgetCommand
from bot.commands.handlers.agents.levers import Levers
from bot.commands.handlers.agents.messages import MessageCommands
from bot.commands.handlers.agents.restart_all import RestartAll
from bot.commands.handlers.agents.resume import LimitCommands
from bot.commands.handlers.agents.runs import RunCommands
from bot.commands.handlers.agents.spawn.spend import SpawnSpend
from bot.commands.handlers.agents.watch_follow import ScreenFollower
from bot.commands.handlers.approvals.answers import ApprovalDesk
from bot.commands.handlers.approvals.desk import ApprovalCommands, SessionLevers
from bot.commands.handlers.dashboard import DashboardCommands
from bot.commands.handlers.launches.queue import QueueCommands
from bot.commands.handlers.launches.schedules import ScheduleCommands
from bot.commands.handlers.launches.spawn_queue import SpawnQueue
from bot.commands.handlers.overview import OverviewCommands, RosterEditor, Standing
from bot.commands.handlers.places.egress import EgressCommands
from bot.commands.handlers.places.forge import ForgeCommands, ForgeParts
from bot.commands.handlers.places.hosts import HostCommands
from bot.commands.handlers.places.repos import CoAuthors, RepoCommands
from bot.commands.handlers.spend.accounts import AccountCommands
from bot.commands.handlers.spend.budgets import BudgetHandlers
from bot.commands.handlers.spend.changes import ChangeCommands
from bot.commands.handlers.spend.pacing import PacingCommands
from bot.commands.handlers.spend.raising import RaiseCommand
from bot.commands.handlers.verify import VerifyCommand
from bot.commands.handlers.work.board import TaskBoard
from bot.commands.handlers.work.missions import MissionCommands
from bot.commands.handlers.work.starts import ChatTaskStarts
from bot.commands.handlers.work.tasks import TaskCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.confirmations import ConfirmationDesk
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from bot.config import Config
from bot.config.reading.resolved import model_priced
from bot.dashboard.access.signin import SignIns
from bot.render.spend.report_history import ReportHistory
from fleet.budgets.service import BudgetService
from fleet.errors import FleetError
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunRecord
from fleet.model import AgentSpec
from fleet.repos.desk import RepoDesk
from fleet.repos.line.identity import chat_co_author
from fleet.supervisor.fleet import RosterDiff
from fleet.supervisor.interfaces import FleetView
from fleet.tasks.spent import TaskSpend
from scheduler.context import JobContext
from scheduler.jobs import FleetScheduler


def spawn_spend(
    cfg: Config, ledger: Ledger, fleet: FleetView, budgets: BudgetService
) -> SpawnSpend:
    """``spawn``'s cap on a run and its estimate of what a run costs."""

    async def spec_of(name: str) -> AgentSpec | None:
        try:
            return await fleet.spec(name)
        except FleetError:  # not known yet (an ad hoc agent's first spawn), or a bad name
            return None

    return SpawnSpend(
        ledger.agents,
        ledger.runs,
        spec_of,
        priced=model_priced(cfg),
        governing=budgets.governing_status,
        quotes=ledger.quotes,
    )


def co_authors(cfg: Config) -> CoAuthors:
    """Who an operator is in git (``operators:``' ``git_name`` and ``git_email``; else a
    chat user's id at an ``.invalid`` address naming the chat), for the
    ``Co-authored-by:`` of the commits a command of theirs makes. The console's user is
    whoever runs Fleetwarden: without a ``git_name`` of its own, no one."""
    listed = [(op.id, op.connector, op.co_author) for op in cfg.operators if op.co_author]

    def of(connector: str, sender: str) -> str | None:
        found = [
            (on, who) for user, on, who in listed if user == sender and on in (None, connector)
        ]
        found.sort(key=_any_connector)  # an entry for this connector wins
        if found:
            return found[0][1]
        return None if connector == "console" else chat_co_author(connector, sender)

    return of


def _any_connector(entry: tuple[str | None, str]) -> bool:
    """Whether an operator's entry is for every connector (sorted after one for a
    connector of its own)."""
    return entry[0] is None


@dataclass(frozen=True, slots=True)
class Commands:
    """What the commands phase builds for the phases after it."""

    router: Router
    acl: Acl
    schedules: ScheduleCommands
    queue: SpawnQueue
    approvals: ApprovalDesk
    signins: SignIns | None  # the dashboard's, when the config has one


def build_commands(
    at: Grounds,
    *,
    ledgered: Ledgered,
    spend: Spend,
    fleeted: Fleeted,
    scheduler: FleetScheduler[JobContext],
    follower: ScreenFollower,
    reload_roster: Callable[[], Awaitable[RosterDiff]] | None,
    repos: RepoDesk | None = None,
    edit_roster: RosterEditor | None = None,
    forge: ForgeParts | None = None,
) -> Commands:
    """The families of command handlers over what the phases before made, and the router
    over them. ``repos``: the repositories agents work on (``None``: the config has no
    ``repos:``). ``forge``: what the forge commands use of forge work (``None`` without forges)."""
    cfg, clock, ledger, fleet = at.cfg, at.clock, ledgered.ledger, fleeted.fleet
    budgets, queue, connector_named = spend.budgets, fleeted.queue, at.serving.named
    identities = co_authors(cfg)
    register = fleeted.register

    async def forge_runs(agent: str | None) -> list[ForgeRunRecord]:
        return await ledger.forge.forge_runs(agent=agent) if cfg.forges else []

    handlers = Handlers(
        fleet=fleet,
        clock=clock,
        follow_screen=follower.follow,
        admission=queue.admission,
        gate=queue,
        spend=spawn_spend(cfg, ledger, fleet, budgets),
        repos=repos,
        co_authors=identities,
        forge_runs=forge_runs,
        register=register,
    )
    acl = Acl(wiring.grants_of(cfg))
    signins = SignIns(ledger.dashboard, acl, clock) if cfg.dashboard is not None else None
    grammar = Grammar(COMMANDS, prefix=cfg.command_prefix)
    grammars = {name: Grammar(COMMANDS, prefix=p) for name, p in wiring.prefixes(cfg).items()}
    schedules = ScheduleCommands(
        schedules=ledger.schedules,
        scheduler=scheduler,
        grammar_for=lambda connector: grammars.get(connector, grammar),
        clock=clock,
        timezone=cfg.timezone,  # crontab times are read, and shown, in this zone
        stranger=queue.admission.stranger,
    )
    desk = ConfirmationDesk(ledger.chat, clock)
    approvals = ledgered.approvals
    answers = ApprovalDesk(approvals, acl, ledger.chat, ledger.audit, fleet.outputs.open_runs)
    live = fleet if isinstance(fleet, SessionLevers) else None
    levers = Levers(
        fleet=fleet,
        agents=ledger.agents,
        budgets=ledger.budgets,
        desk=desk,
        stop_one=handlers.stop,
        queue=queue,
        asks=fleeted.spend_asks,
        restart_named=handlers.restart,
        restart_all=RestartAll(
            fleet, handlers.restart_agent, connector_named=at.serving.named, audit=ledger.audit
        ),
    )
    at.stops.add(Stop.RESTARTS, levers.close)  # a `restart all` under way
    overview = OverviewCommands(
        fleet=fleet,
        specs=COMMANDS,
        clock=clock,
        prefix=cfg.command_prefix,
        reload_roster=reload_roster,
        edit_roster=edit_roster,
        budgets=budgets,
        gate=queue,
        forge_runs=forge_runs,
        standing=Standing(
            problems=at.serving.failures.problems,
            build=build.current(),
            enforce=cfg.document.enforce,
            links=at.serving.link_reports,
            redact=at.redactor.redact,
        ),
    )
    families = (
        overview,
        handlers,
        PacingCommands(
            fleet,
            budgets,
            at.reports_dir,
            spend.accounts,
            ReportHistory(
                ledger.tasks.errors_since, budgets.typical, ledger.metering.spend_by_agent
            ),
        ),
        ChangeCommands(ledger.changes, clock),
        BudgetHandlers(budgets),
        AccountCommands(spend.accounts),
        levers,
        LimitCommands(fleet),
        RaiseCommand(fleeted.spend_asks),
        ApprovalCommands(approvals, answers, clock, live, medium=medium(cfg, connector_named)),
        RunCommands(
            fleet,
            cfg.defaults.logs_lines,
            forge_runs,
            ledger.quotes,
            TaskSpend(tasks=ledger.tasks, actuals=ledger.actuals),
            ledger.mcp_calls,
        ),
        MessageCommands(ledger.messages, fleet),
        RepoCommands(repos, desk, identities, register, forge.pulls if forge else None),
        ForgeCommands(forge, clock),
        schedules,
        ForgetCommand(fleet, approvals),
        QueueCommands(queue, forge_runs),
        EgressCommands(fleet, at.sandboxes, ledgered.notifier),
        HostCommands(at.hosts, ledger.agents, clock.now),
        DashboardCommands(signins, cfg.dashboard, connector_named),
        VerifyCommand(cfg.state_dir, matrix=cfg.matrix is not None),
        TaskCommands(register=register, launches=handlers, fleet=fleet, gate=queue, repos=repos),
        TaskBoard(
            register=register,
            missions=ledger.missions,
            runs=ledger.runs,
            clock=clock,
            reviews=ledger.reviews,
        ),
        MissionCommands(register=register, missions=ledger.missions, pipelines=fleeted.pipelines),
    )

    async def agent_names() -> set[str]:
        names: set[str] = {status.name for status in await fleet.ps()}
        names.update(spec.name for spec in fleet.roster())
        return names

    router = Router(
        grammar=grammar,
        grammars=grammars,
        acl=acl,
        handlers=registry.handlers(families),
        audit=ledger.audit,
        chat=ledger.chat,
        ordering=ledgered.notifier.ordering,
        confirmations=desk,
        approvals=answers,
        agents=agent_names,
    )
    queue.open(router, connector_named, handlers.queued)
    # A task held for others starts, once they are done, as its asker where they asked.
    register.listen(ChatTaskStarts(clock, router, connector_named).start)
    if fleeted.pipelines is not None:  # the gates a stop left, now a stage can start
        fleeted.pipelines.resume()
    fleet.subscribe(queue.on_fleet_event)
    return Commands(router, acl, schedules, queue, answers, signins)
