"""The ledger's stores the budgets read and write: budgets set by command, bursts and
steps, the agents, their metered usage and the accounts' quota windows."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.spend.accounts import AccountsStore
from fleet.ledger.stores.spend.budgets import BudgetsStore
from fleet.ledger.stores.spend.metering import MeteringStore


@dataclass(frozen=True, slots=True)
class BudgetStores:
    """What :class:`fleet.budgets.service.BudgetService` keeps in and reads from the ledger."""

    budgets: BudgetsStore
    """Budgets set by command, bursts, pacing steps and freezes."""
    agents: AgentsStore
    """The agents, for their groups and who there is to pace."""
    metering: MeteringStore
    """Usage rows and quota signals: the spend paced against."""
    accounts: AccountsStore
    """The accounts' quota windows."""
