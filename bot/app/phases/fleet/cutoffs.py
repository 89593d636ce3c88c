"""The app's cutoffs phase: the budgets' limits carried out on the running fleet — the
holds of the runs still going restored, the budgets with ``cutoff: ask`` asking through the
spend asks, and each budget's cutoff enforced (:class:`~fleet.supervisor.cutoffs.CutoffKeeper`)."""

from __future__ import annotations

from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.app.phases.fleet.launching import Fleeted
from fleet.budgets.quoting.service import restore_holds
from fleet.supervisor.cutoffs import CutoffKeeper


async def enforce_cutoffs(ledgered: Ledgered, spend: Spend, fleeted: Fleeted) -> None:
    """The budgets' cutoffs carried out on the fleet from now on."""
    ledger, budgets, asks = ledgered.ledger, spend.budgets, fleeted.spend_asks
    # The runs still going hold again what their quotes hold, less what they spent.
    await restore_holds(budgets.holds, ledger.runs, ledger.quotes)
    if asks is not None:  # budgets with `cutoff: ask` ask too
        asks.ask_for_budgets(budgets)
    await budgets.enforce_with(CutoffKeeper(fleeted.fleet, asks))
