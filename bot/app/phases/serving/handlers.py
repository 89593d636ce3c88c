"""The families of command handlers the commands phase builds, one builder per family,
over what the phases before made and the parts they share (:class:`FamilyParts`: the
forge runs an agent is on, who an operator is in git, the confirmation desk; the grammar
of each connector's prefix).

The router over them is :mod:`bot.app.phases.serving.routing`; the phase that puts both
together is :func:`bot.app.phases.serving.commands.build_commands`."""

from __future__ import annotations

from dataclasses import dataclass

from bot import build
from bot.app import assembly as wiring
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.app.phases.fleet.approval_desk import medium
from bot.app.phases.fleet.launching import Fleeted
from bot.app.stops import Stop
from bot.commands.family import Family
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.forget import ForgetCommand
from bot.commands.handlers.agents.levers import Levers
from bot.commands.handlers.agents.messages import MessageCommands
from bot.commands.handlers.agents.restart_all import RestartAll
from bot.commands.handlers.agents.resume import LimitCommands
from bot.commands.handlers.agents.runs import RunCommands
from bot.commands.handlers.agents.spawn.launching import Launching, SpawnRepos
from bot.commands.handlers.agents.spawn.spend import SpawnSpend
from bot.commands.handlers.agents.watch_follow import ScreenFollower
from bot.commands.handlers.approvals.answers import ApprovalDesk
from bot.commands.handlers.approvals.desk import ApprovalCommands, SessionLevers
from bot.commands.handlers.dashboard import DashboardCommands
from bot.commands.handlers.launches.queue import QueueCommands
from bot.commands.handlers.launches.schedules import ScheduleCommands
from bot.commands.handlers.overview import OverviewCommands, RosterFile, Standing
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
from bot.commands.handlers.work.tasks import TaskCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.confirmations import ConfirmationDesk
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
from fleet.supervisor.admission.owners import ForgeRuns
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
class FamilyParts:
    """What every family of command handlers is made over: what the phases before made,
    and what the families share (the forge runs an agent is on, who an operator is in git,
    the desk of commands that ask before they act)."""

    at: Grounds
    ledgered: Ledgered
    spend: Spend
    fleeted: Fleeted
    repos: RepoDesk | None
    forge: ForgeParts | None
    forge_runs: ForgeRuns
    co_authors: CoAuthors
    desk: ConfirmationDesk


def forge_runs_of(cfg: Config, ledgered: Ledgered) -> ForgeRuns:
    """The forge runs an agent is on (all of them: ``None``), as the ledger has them (none
    without forges)."""
    forge = ledgered.ledger.forge

    async def forge_runs(agent: str | None) -> list[ForgeRunRecord]:
        return await forge.forge_runs(agent=agent) if cfg.forges else []

    return forge_runs


Grammars = tuple[Grammar, dict[str, Grammar]]
"""The grammar of the command prefix, and the grammars of connectors with their own."""


def grammars_of(cfg: Config) -> Grammars:
    """The grammar of the config's command prefix, and one per connector with a prefix of
    its own."""
    grammar = Grammar(COMMANDS, prefix=cfg.command_prefix)
    return grammar, {name: Grammar(COMMANDS, prefix=p) for name, p in wiring.prefixes(cfg).items()}


def agent_handlers(parts: FamilyParts, follower: ScreenFollower) -> Handlers:
    """The agents' own verbs: spawn, stop, restart, send, watch (``follower``: the screens
    ``watch`` shows), and the launches the spawn queue holds."""
    at, fleeted = parts.at, parts.fleeted
    cfg, ledger, fleet = at.cfg, parts.ledgered.ledger, fleeted.fleet
    return Handlers(
        fleet=fleet,
        clock=at.clock,
        follow_screen=follower.follow,
        launching=Launching(
            fleeted.queue.admission,
            gate=fleeted.queue,
            spend=spawn_spend(cfg, ledger, fleet, parts.spend.budgets),
        ),
        repos=None if parts.repos is None else SpawnRepos(parts.repos, parts.co_authors),
        forge_runs=parts.forge_runs,
        register=fleeted.register,
    )


def agent_families(
    parts: FamilyParts, handlers: Handlers, answers: ApprovalDesk
) -> tuple[Family, ...]:
    """The agents family: its verbs (``handlers``), the emergency levers, the limits and
    raises, the approvals asked of its runs (``answers``: the desk answering them), its runs
    and messages, and forgetting one."""
    at, fleeted, ledgered = parts.at, parts.fleeted, parts.ledgered
    fleet, ledger, approvals = fleeted.fleet, ledgered.ledger, ledgered.approvals
    live = fleet if isinstance(fleet, SessionLevers) else None
    medium_of = medium(at.cfg, at.serving.named)
    spent = TaskSpend(tasks=ledger.tasks, actuals=ledger.actuals)
    return (
        handlers,
        levers(parts, handlers),
        LimitCommands(fleet),
        RaiseCommand(fleeted.spend_asks),
        ApprovalCommands(approvals, answers, at.clock, live, medium=medium_of),
        RunCommands(
            fleet,
            at.cfg.defaults.logs_lines,
            parts.forge_runs,
            ledger.quotes,
            spent,
            ledger.mcp_calls,
        ),
        MessageCommands(ledger.messages, fleet),
        ForgetCommand(fleet, approvals),
    )


def levers(parts: FamilyParts, handlers: Handlers) -> Levers:
    """The emergency levers: ``freeze``, ``stop all``, ``resume``, ``restart all`` (a
    ``restart all`` under way stopped with the app)."""
    at, fleeted, ledger = parts.at, parts.fleeted, parts.ledgered.ledger
    fleet = fleeted.fleet
    made = Levers(
        fleet=fleet,
        agents=ledger.agents,
        budgets=ledger.budgets,
        desk=parts.desk,
        stop_one=handlers.stop,
        queue=fleeted.queue,
        asks=fleeted.spend_asks,
        restart_named=handlers.restart,
        restart_all=RestartAll(
            fleet, handlers.restart_agent, connector_named=at.serving.named, audit=ledger.audit
        ),
    )
    at.stops.add(Stop.RESTARTS, made.close)
    return made


def overview_commands(parts: FamilyParts, roster: RosterFile | None) -> OverviewCommands:
    """The overview: status, the roster and its edits (``roster``: ``None`` without a
    config file), and how Fleetwarden stands."""
    at, fleeted = parts.at, parts.fleeted
    cfg = at.cfg
    return OverviewCommands(
        fleet=fleeted.fleet,
        specs=COMMANDS,
        clock=at.clock,
        prefix=cfg.command_prefix,
        roster=roster,
        budgets=parts.spend.budgets,
        gate=fleeted.queue,
        forge_runs=parts.forge_runs,
        standing=Standing(
            problems=at.serving.failures.problems,
            build=build.current(),
            enforce=cfg.document.enforce,
            links=at.serving.link_reports,
            redact=at.redactor.redact,
        ),
    )


def spend_families(parts: FamilyParts) -> tuple[Family, ...]:
    """The spend family: pacing and its reports, the cost of changes, the budgets and the
    accounts."""
    at, spend, ledger = parts.at, parts.spend, parts.ledgered.ledger
    budgets = spend.budgets
    history = ReportHistory(
        ledger.tasks.errors_since, budgets.typical, ledger.metering.spend_by_agent
    )
    return (
        PacingCommands(parts.fleeted.fleet, budgets, at.reports_dir, spend.accounts, history),
        ChangeCommands(ledger.changes, at.clock),
        BudgetHandlers(budgets),
        AccountCommands(spend.accounts),
    )


def place_families(parts: FamilyParts, signins: SignIns | None) -> tuple[Family, ...]:
    """The places agents work and are reached at: the repositories, the forges, egress,
    the hosts, the dashboard (``signins``: its sign-ins, when the config has one) and the
    checks of this machine."""
    at, ledgered, fleet = parts.at, parts.ledgered, parts.fleeted.fleet
    cfg, ledger, forge = at.cfg, ledgered.ledger, parts.forge
    pulls = forge.pulls if forge else None
    register = parts.fleeted.register
    return (
        RepoCommands(parts.repos, parts.desk, parts.co_authors, register, pulls),
        ForgeCommands(forge, at.clock),
        EgressCommands(fleet, at.sandboxes, ledgered.notifier),
        HostCommands(at.hosts, ledger.agents, at.clock.now),
        DashboardCommands(signins, cfg.dashboard, at.serving.named),
        VerifyCommand(cfg.state_dir, matrix=cfg.matrix is not None),
    )


def schedule_commands(
    parts: FamilyParts, scheduler: FleetScheduler[JobContext], grammars: Grammars
) -> ScheduleCommands:
    """The operators' schedules, added to ``scheduler``, each command read with the grammar
    of the connector it was scheduled on (its own in ``grammars``, else the default)."""
    at, cfg = parts.at, parts.at.cfg
    grammar, own = grammars

    def grammar_for(connector: str) -> Grammar:
        return own.get(connector, grammar)

    return ScheduleCommands(
        schedules=parts.ledgered.ledger.schedules,
        scheduler=scheduler,
        grammar_for=grammar_for,
        clock=at.clock,
        timezone=cfg.timezone,  # crontab times are read, and shown, in this zone
        stranger=parts.fleeted.queue.admission.stranger,
    )


def task_commands(parts: FamilyParts, launches: Handlers) -> TaskCommands:
    """The task commands, started by ``launches`` (``spawn``'s own family)."""
    fleeted = parts.fleeted
    return TaskCommands(
        register=fleeted.register,
        launches=launches,
        fleet=fleeted.fleet,
        gate=fleeted.queue,
        repos=parts.repos,
    )


def work_families(parts: FamilyParts, tasks: TaskCommands) -> tuple[Family, ...]:
    """The work family: the spawn queue, the ``tasks``, their board and the missions."""
    fleeted, ledger = parts.fleeted, parts.ledgered.ledger
    register, queue = fleeted.register, fleeted.queue
    return (
        QueueCommands(queue, parts.forge_runs),
        tasks,
        TaskBoard(
            register=register,
            missions=ledger.missions,
            runs=ledger.runs,
            clock=parts.at.clock,
            reviews=ledger.reviews,
        ),
        MissionCommands(register=register, missions=ledger.missions, pipelines=fleeted.pipelines),
    )
