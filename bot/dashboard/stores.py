"""The ledger's stores the dashboard's pages read: agents, approvals, the audit, the
dashboard's own usage sums, forge runs and changes."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.ledger.stores.agents import AgentsStore
from fleet.ledger.stores.approvals import ApprovalsStore
from fleet.ledger.stores.audit import AuditStore
from fleet.ledger.stores.changes import ChangesStore
from fleet.ledger.stores.dashboard import DashboardStore
from fleet.ledger.stores.forge import ForgeStore


@dataclass(frozen=True, slots=True)
class PageStores:
    """What :class:`bot.dashboard.views.Views` reads from the ledger."""

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
