"""The one admission every launch passes, as the fleet phase makes it: its chain of stages
(:func:`admission_stages`, one stage a line in the chain's order, checked whole as it is
made) over the parts each stage needs (:class:`AdmissionParts`) — whose an agent is, a
handed-on task's restart, the budgets, the quote and its holds, the concurrency caps.

A new stage is one more line in :func:`admission_stages` and its parts in
:class:`AdmissionParts`; a stage left out is a start-up error naming it, never an open
door."""

from __future__ import annotations

from dataclasses import dataclass

from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.commands.handlers.agents.owners import ChatWords
from bot.commands.handlers.launches.spawn_queue import slots_of
from bot.config import Config
from bot.config.reading.resolved import model_priced
from fleet.budgets.quoting.holds import Holds
from fleet.budgets.quoting.service import Quoting
from fleet.budgets.service import BudgetService
from fleet.peers.handed import HandedTasks
from fleet.peers.rules import Rules
from fleet.repos.service import Repos
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.admission.owners import AgentOwners, stored_runs
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.admission.stages.budgets import BudgetStage
from fleet.supervisor.admission.stages.caps import CapStage
from fleet.supervisor.admission.stages.chain import Stage
from fleet.supervisor.admission.stages.handoff import HandedOn, HandoffStage
from fleet.supervisor.admission.stages.naming import NamingStage
from fleet.supervisor.admission.stages.ownership import Owners, OwnershipStage
from fleet.supervisor.admission.stages.quote import QuoteStage
from fleet.supervisor.launcher import Launcher
from fleet.tasks.runs import TaskRuns
from fleet.timing.clock import Clock


def make_admission(
    cfg: Config,
    ledgered: Ledgered,
    launcher: Launcher,
    spend: Spend,
    tasks: TaskRuns,
    clock: Clock,
    repos: Repos | None,
) -> Admission:
    """The one admission, over ``launcher``, its chain checked whole as it is made
    (:class:`~fleet.supervisor.admission.stages.chain.MissingStage`: the app does not
    start); the register's binding of runs to tasks. Whose an agent is reads the agents'
    records, the forge runs (when a forge is configured) and ``repos`` (``None``: none); a
    watchdog restart's task handed on, the runs, the tasks and the peers' rules."""
    ledger = ledgered.ledger
    slots = slots_of(cfg, launcher, ledger.agents, ledger.spawn_queue, spend.accounts)
    quoting = Quoting(
        ledger.runs,
        ledger.quotes,
        clock,
        default_runtime=cfg.defaults.runtime,
        # Without the metering proxy no cap in dollars binds: no model counts as priced.
        priced=model_priced(cfg) or _unpriced,
    )
    owners = AgentOwners(
        ledger.agents,
        stored_runs(ledger.forge) if cfg.forges else None,  # an agent on an issue is its
        repos,
        ChatWords(),
        frozenset() if repos is None else repos.launching,
    )
    # Who handed a task on, and whether it may still reach its agent: a watchdog restart's.
    rules = Rules(
        messages=ledger.messages,
        fleet=launcher,
        clock=clock,
        max_chars=cfg.defaults.message_chars,
        queue=cfg.defaults.message_queue,
    )
    handed = HandedTasks(runs=ledger.runs, tasks=ledger.tasks, rules=rules)
    parts = AdmissionParts(
        owners, handed, launcher, slots, spend.budgets, quoting, spend.budgets.holds
    )
    return Admission(fleet=launcher, stages=admission_stages(parts), tasks=tasks)


@dataclass(frozen=True, slots=True)
class AdmissionParts:
    """What the admission's stages are made over (a new stage's parts join here)."""

    owners: Owners
    handed: HandedOn
    launcher: Launcher
    slots: Slots
    budgets: BudgetService
    quoting: Quoting
    holds: Holds


def admission_stages(parts: AdmissionParts) -> list[Stage]:
    """The admission's chain, one stage a line in the order of
    :data:`~fleet.supervisor.admission.stages.chain.ORDER`: whether the name is known (or a
    likely typo), whose the agent is, a handed-on
    task's restart, the budgets and their fallback, the quote and its holds, the concurrency
    caps. A stage left out here is a start-up error naming it, never an open door."""
    return [
        NamingStage(parts.launcher),
        OwnershipStage(parts.owners, parts.slots),
        HandoffStage(parts.handed),
        BudgetStage(parts.budgets, parts.launcher, parts.slots),
        QuoteStage(parts.launcher, parts.quoting, parts.holds, parts.slots),
        CapStage(parts.slots),
    ]


def _unpriced(model: str | None) -> bool:
    """No model is priced (the config turns the metering proxy off)."""
    return False
