"""The ledger's stores the dashboard's pages read: agents, approvals, the audit, the
dashboard's own usage sums, forge runs, changes, the register's tasks and missions, and
the messages between agents."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.ledger.stores.code.changes import ChangesStore
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.operators.approvals import ApprovalsStore
from fleet.ledger.stores.operators.audit import AuditStore
from fleet.ledger.stores.operators.dashboard import DashboardStore
from fleet.ledger.stores.peers.messages import MessagesStore
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.work.actuals import ActualsStore
from fleet.ledger.stores.work.missions import MissionsStore
from fleet.ledger.stores.work.stages import StagesStore
from fleet.ledger.stores.work.tasks import TasksStore


@dataclass(frozen=True, slots=True)
class TaskStores:
    """What the task board reads: the register's tasks, their missions, what their runs
    really used, and the stages of missions made from pipelines."""

    tasks: TasksStore
    missions: MissionsStore
    actuals: ActualsStore
    stages: StagesStore | None = None
    """Shown on their tasks' cards; none where the app keeps no pipelines."""


@dataclass(frozen=True, slots=True)
class PageStores:
    """What :class:`bot.dashboard.pages.views.Views` reads from the ledger."""

    agents: AgentsStore
    """The agents and their history."""
    approvals: ApprovalsStore
    """Approval requests, open and answered."""
    audit: AuditStore
    """What was done, by whom."""
    dashboard: DashboardStore
    """The usage sums the pages read."""
    forge: ForgeStore
    """Forge runs, listed on the fleet page."""
    changes: ChangesStore
    """Lines some run worked on, what they cost and how they ended: the Changes page."""
    work: TaskStores
    """The register: the Tasks page, ``/api/tasks`` and their gauges."""
    messages: MessagesStore
    """What agents said to each other: an agent's page, ``/api/messages``, ``/metrics``."""
