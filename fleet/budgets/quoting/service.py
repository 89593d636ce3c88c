"""The quotes reckoned against the ledger: a launch's quote from the agent's earlier
finished runs on the runtime and model it will really run (started before now: never the
run itself), kept on its run once the run is recorded; and, when Fleetwarden starts, the
open runs' holds rebuilt from their kept quotes and what each has spent since it began."""

from __future__ import annotations

from collections.abc import Callable

from fleet.budgets.quoting.holds import Holds
from fleet.budgets.quoting.quote import quote_of
from fleet.ledger.records.quotes import Quote
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.spend.quotes import QuotesStore
from fleet.model import RunBudget
from fleet.timing.clock import Clock

BASIS_RUNS = 100
"""The most earlier runs a quote is reckoned from, newest first."""


class Quoting:
    """Makes launches' quotes and keeps them on their runs. ``default_runtime``: the
    runtime of an agent nobody knows yet (the defaults')."""

    def __init__(
        self,
        runs: RunsStore,
        quotes: QuotesStore,
        clock: Clock,
        *,
        default_runtime: str,
        priced: Callable[[str | None], bool] | None = None,
    ) -> None:
        """``priced``: whether a model has a price (``None``: every model is taken to)."""
        self._runs = runs
        self._quotes = quotes
        self._clock = clock
        self.default_runtime = default_runtime
        self._priced = priced

    def priced(self, model: str | None) -> bool:
        """Whether runs on ``model`` cost dollars (a cap in dollars can bind on them)."""
        return self._priced is None or self._priced(model)

    async def quote(
        self, agent: str, runtime: str, model: str | None, cap: RunBudget | None
    ) -> Quote:
        """The quote of a run of ``agent`` on ``runtime`` with ``model`` under ``cap``."""
        now = self._clock.now()
        past = await self._runs.run_basis(agent, runtime, model, BASIS_RUNS, before=now)
        return quote_of(agent, runtime, model, past, cap, now)

    async def keep(self, quote: Quote) -> int | None:
        """Keep ``quote`` on the run its agent was just launched in; that run's id."""
        run = await self._runs.last_run(quote.agent)
        if run is None:
            return None
        await self._quotes.keep_quote(run.id, quote)
        return run.id

    async def running(self, agent: str) -> bool:
        """Whether ``agent`` has a run going (its launch only reports it)."""
        run = await self._runs.last_run(agent)
        return run is not None and run.ended_at is None

    async def of_run(self, run_id: int) -> Quote | None:
        """Run ``run_id``'s quote, as it was kept."""
        return await self._quotes.quote_of(run_id)


async def restore_holds(holds: Holds, runs: RunsStore, quotes: QuotesStore) -> int:
    """The open runs with a kept quote hold again, less what each has spent since it
    began; how many do."""
    open_runs = await runs.open_runs()
    kept = await quotes.quotes_of([run.id for run in open_runs])
    found = []
    for run in open_runs:
        quote = kept.get(run.id)
        if quote is not None:
            tokens, dollars = await runs.spent_since(run.agent, run.started_at)
            found.append((run.id, quote, float(tokens), dollars))
    return holds.restore(found)
