"""The ledger's stores a test's fleet takes, from the ledger the test opened."""

from __future__ import annotations

from bot.dashboard.pages.stores import PageStores, TaskStores
from fleet.budgets.stores import BudgetStores
from fleet.ledger import Ledger
from fleet.supervisor.stores import FleetStores
from fleet.tasks.runs import TaskRuns


def fleet_stores(ledger: Ledger) -> FleetStores:
    """The stores of ``ledger`` a :class:`~fleet.supervisor.fleet.Fleet` keeps its agents in."""
    return FleetStores(
        agents=ledger.agents,
        runs=ledger.runs,
        heartbeats=ledger.heartbeats,
        metering=ledger.metering,
        budgets=ledger.budgets,
        lines=ledger.lines,
        refusals=ledger.refusals,
        forge=ledger.forge,
        spawn_queue=ledger.spawn_queue,
    )


def budget_stores(ledger: Ledger) -> BudgetStores:
    """The stores of ``ledger`` a :class:`~fleet.budgets.service.BudgetService` paces with."""
    return BudgetStores(ledger.budgets, ledger.agents, ledger.metering, ledger.accounts)


def page_stores(ledger: Ledger) -> PageStores:
    """The stores of ``ledger`` the dashboard's pages read."""
    return PageStores(
        ledger.agents,
        ledger.approvals,
        ledger.audit,
        ledger.dashboard,
        ledger.forge,
        ledger.changes,
        TaskStores(ledger.tasks, ledger.missions, ledger.actuals, ledger.stages),
        ledger.messages,
    )


def task_runs_of(ledger: Ledger) -> TaskRuns:
    """The task runs kept in ``ledger``: its tasks, actuals, runs, lines and spawn queue."""
    return TaskRuns(
        tasks=ledger.tasks,
        actuals=ledger.actuals,
        runs=ledger.runs,
        lines=ledger.lines,
        spawn_queue=ledger.spawn_queue,
    )
