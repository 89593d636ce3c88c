"""What ``spawn`` says and takes about spend: the run's cap (``--max-tokens N``,
``--max-usd X``, checked before anything starts), the limit on its quote
(``--quote-under X``) and, in its answer, what a run of the
agent usually costs and what share of its budget's allowance today that is
(:mod:`fleet.budgets.runs.estimate`), told from the quote kept on the run at its admission
(:mod:`fleet.budgets.quoting`), with what the run holds against its budgets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from bot.commands.errors import CommandError
from bot.commands.parsing.grammar import FlagValue
from fleet.budgets.model import BudgetStatus
from fleet.budgets.quoting.quote import QuoteUnderError, estimate_of, parse_quote_under
from fleet.budgets.quoting.words import hold_text
from fleet.budgets.runs.budget import (
    RunBudgetError,
    cap_text,
    parse_max_tokens,
    parse_max_usd,
    unpriced_cap,
)
from fleet.budgets.runs.estimate import estimate_runs, estimate_text
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.spend.quotes import QuotesStore
from fleet.metering import units
from fleet.model import AgentSpec, RunBudget

SpecOf = Callable[[str], Awaitable[AgentSpec | None]]
Governing = Callable[[str], Awaitable[BudgetStatus | None]]


def quote_under(flags: Mapping[str, FlagValue]) -> float | None:
    """``--quote-under X``: the dollars the run's quote must be at most (``None``: not
    given), refused with what to write when it cannot be read."""
    given = flags.get("quote-under")
    if not isinstance(given, str):
        return None
    try:
        return parse_quote_under(given)
    except QuoteUnderError as exc:
        raise CommandError(str(exc)) from None


class SpawnSpend:
    """``spawn``'s cap and estimate. ``priced``: whether a model has a price (``None``:
    metering is off, so no cap in dollars can bind); ``governing``: the status of the
    budget over an agent (``None``: no budgets); ``quotes``: the runs' quotes (``None``:
    the estimate is reckoned again from the runs before the one launched)."""

    def __init__(
        self,
        agents: AgentsStore,
        runs: RunsStore,
        spec_of: SpecOf,
        *,
        priced: Callable[[str | None], bool] | None,
        governing: Governing | None = None,
        quotes: QuotesStore | None = None,
    ) -> None:
        self._agents = agents
        self._quotes = quotes
        self._runs = runs
        self._spec_of = spec_of
        self._priced = priced
        self._governing = governing

    async def cap(
        self, name: str, flags: Mapping[str, FlagValue], runtime: str | None, model: str | None
    ) -> RunBudget | None:
        """The cap the spawn asks for (``None``: none given), refused with the fix when it
        cannot bind: a cap in dollars on a model without a price."""
        tokens_flag, usd_flag = flags.get("max-tokens"), flags.get("max-usd")
        try:
            tokens = parse_max_tokens(tokens_flag) if isinstance(tokens_flag, str) else None
            usd = parse_max_usd(usd_flag) if isinstance(usd_flag, str) else None
        except RunBudgetError as exc:
            raise CommandError(str(exc)) from None
        if tokens is None and usd is None:
            return None
        spec = await self._spec_of(name)
        same_cli = spec is not None and runtime in (None, spec.runtime)
        known = spec.run_budget if spec is not None else None
        if self._priced is None:
            raise CommandError(
                "a cap on a run needs the metering proxy, which the config turns off "
                "(`metering: {enabled: false}`)"
            )
        if usd is not None:
            if model is None and spec is not None and same_cli:
                model = spec.model
            if not self._priced(model):
                raise CommandError(unpriced_cap(model))
        # The flags give the amounts; what happens past them is the agent's own: its
        # cutoff and, when it asks, how long it waits, its fallback and its offers.
        if known is None:
            return RunBudget(tokens, usd)
        if known.offer_usd is not None and usd is None:
            raise CommandError(_offer_without(name, units.usd(known.offer_usd), "--max-usd X"))
        if known.offer_tokens is not None and tokens is None:
            offered = units.tokens_words(known.offer_tokens)
            raise CommandError(_offer_without(name, offered, "--max-tokens N"))
        fresh = replace(known, since=None, raised_tokens=0, raised_usd=0.0)  # a new task
        return replace(fresh, max_tokens=tokens, max_usd=usd)

    async def answer(self, name: str) -> str:
        """The lines the spawn's answer adds: the run's cap, and what a run costs (of the
        spec it was launched with, as the ledger keeps it)."""
        record = await self._agents.get_agent(name)
        if record is None:
            return ""
        spec = record.spec
        run = await self._runs.last_run(name)  # the run just launched: not its own history
        status = await self._governing(name) if self._governing is not None else None
        quote = None
        if run is not None and self._quotes is not None:
            quote = await self._quotes.quote_of(run.id)
        if quote is not None:  # as it was admitted: the same before, during and after it
            text = estimate_text(estimate_of(quote), quote.runtime, quote.model, status)
            text += " " + hold_text(quote)
        else:
            before = run.started_at if run is not None else None
            costs = await self._runs.run_costs(name, spec.runtime, spec.model, before=before)
            text = estimate_text(estimate_runs(costs), spec.runtime, spec.model, status)
        if spec.run_budget is not None:
            text = f"This run is capped at {cap_text(spec.run_budget)}.\n" + text
        return text


def _offer_without(name: str, offered: str, flag: str) -> str:
    """Why a spawn's cap lacks the measure of the raise ``name``'s ``run_budget`` offers."""
    return (
        f"{name}'s `run_budget` offers raises of {offered} at its cap, a measure this cap "
        f"does not have: give `{flag}` too (or change the offer in the roster)"
    )
