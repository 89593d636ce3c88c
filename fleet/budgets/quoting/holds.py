"""What live runs hold against the budgets: each launch takes its quote's hold at its
admission, in the same step as the check that it fits (nothing awaited between them, so
launches made at once never all see the same remainder), bound to its run once the run is
recorded, reduced as the run's metered usage arrives (the proxy's settle), and released
when the run ends or the launch did not start.

Held now, per unit: ``max(0, hold − spent since the run began)``. A hold counts against
the budget that governs its agent — the one the proxy holds its requests to, by the scope
rule (the most specific of the agent's own, its groups', the host's, account's and
provider's its requests go through, and global) — in the budget's unit, and in dollars
too for a budget with a limit in each: what the budget has used now, plus what the other
runs hold, plus this launch's hold must fit under its limit; else the launch waits for a
run to end. A launch quoted above what is left of the budget starts when no other run
holds anything (alone, its cap and the budget's limit bind it as usual): a quote never
keeps a launch waiting for what can never come. Everything here answers from memory, on
the event loop."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from fleet.budgets.model import BudgetStatus
from fleet.budgets.quoting.words import usd
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.quotes import Quote
from fleet.metering import units

RELEASING = frozenset({EventKind.ENDED, EventKind.GAVE_UP})
"""The fleet events that end a run's hold."""


@dataclass(slots=True, eq=False)
class Taken:
    agent: str
    hold: dict[str, float]  # unit -> what the quote holds
    scopes: frozenset[str]  # the budgets' scopes it counts against
    run_id: int | None = None  # None: taken at admission, the run not recorded yet
    spent: dict[str, float] = field(default_factory=lambda: {"tokens": 0.0, "usd": 0.0})

    def now(self, unit: str) -> float:
        return max(0.0, self.hold.get(unit, 0.0) - self.spent.get(unit, 0.0))


class Live(Protocol):
    """The budgets as holds are checked against them
    (:class:`fleet.budgets.service.BudgetService`)."""

    def governing_key(self, agent: str) -> str | None:
        """The budget that governs ``agent``, if any."""
        ...

    def live(self, key: str) -> tuple[BudgetStatus, float] | None:
        """Budget ``key`` as of the last tick, and what it has used now."""
        ...

    def live_dollars(self, key: str) -> float | None:
        """The dollars budget ``key`` with limits in both measures has used now."""
        ...


@dataclass(frozen=True, slots=True)
class Held:
    """What the live runs hold against one budget: ``amount`` in its unit, by ``runs``."""

    amount: float
    runs: int


class Holds:
    """Every live run's hold, one per agent (an agent never runs twice), against
    ``budgets``."""

    def __init__(self, budgets: Live) -> None:
        self._budgets = budgets
        self._holds: dict[str, Taken] = {}
        self._ended: dict[str, int] = {}  # each agent's run that ended last

    def admit(
        self, agent: str, quote: Quote, *, check: bool = True
    ) -> tuple[Taken | None, str | None]:
        """Take ``quote``'s hold for ``agent``'s launch if it fits under every budget over
        it (``check`` false: take it whatever — the roster's own launches): the hold taken;
        else why it waits, taking nothing. A quote that holds nothing, or a launch of an
        agent whose run holds already (it only reports that run), takes nothing."""
        why = self.no_room(agent, quote) if check else None
        if why is not None:
            return None, why
        hold = _hold_of(quote)
        if not hold or agent in self._holds:
            return None, None
        taken = Taken(agent, hold, self._scopes(agent))
        self._holds[agent] = taken
        return taken, None

    def no_room(self, agent: str, quote: Quote) -> str | None:
        """Why ``quote``'s hold does not fit under a budget over ``agent`` now (``None``:
        it fits under all of them), taking nothing."""
        hold = _hold_of(quote)
        for key in self._scopes(agent):
            found = self._budgets.live(key)
            if found is None:
                continue
            status, used = found
            measures = [(status.unit, used, status.limit)]
            dollars = self._budgets.live_dollars(key)
            if status.unit == "tokens" and dollars is not None and status.budget.limit_usd:
                measures.append(("usd", dollars, float(status.budget.limit_usd)))
            for unit, spent, limit in measures:
                if unit not in hold:
                    continue
                held = self.held(key, unit, but=agent)
                why = _over(key, unit, (spent, held, hold[unit]), limit)
                if why is not None:
                    return why
        return None

    def _scopes(self, agent: str) -> frozenset[str]:
        key = self._budgets.governing_key(agent)
        return frozenset() if key is None else frozenset((key,))

    def bind(self, taken: Taken, run_id: int) -> None:
        """The launch that took ``taken`` was recorded as run ``run_id``: it is that run's."""
        if self._holds.get(taken.agent) is not taken:
            return
        if self._ended.get(taken.agent) == run_id:  # it ended before it was bound
            del self._holds[taken.agent]
        else:
            taken.run_id = run_id

    def let_go(self, taken: Taken) -> None:
        """The launch that took ``taken`` did not start (or its run ended at once)."""
        if self._holds.get(taken.agent) is taken:
            del self._holds[taken.agent]

    def release(self, agent: str, run_id: int | None = None) -> None:
        """``agent``'s run ``run_id`` ended (``None``: whichever): its hold is let go. A
        launch not recorded yet keeps its own (its launch lets it go, or binds it)."""
        if run_id is not None:
            self._ended[agent] = max(run_id, self._ended.get(agent, run_id))
        found = self._holds.get(agent)
        if found is None or found.run_id is None:
            return
        # Its own run's end, or a later one's: a hold whose end was missed goes with it.
        if run_id is None or found.run_id <= run_id:
            del self._holds[agent]

    def spend(self, agent: str, tokens: int, cost: float | None) -> None:
        """A request of ``agent``'s run settled: what it used comes off its hold."""
        found = self._holds.get(agent)
        if found is not None:
            found.spent["tokens"] += float(tokens)
            found.spent["usd"] += cost or 0.0

    def restore(self, runs: Iterable[tuple[int, Quote, float, float]]) -> int:
        """At start: the open runs (their id, quote, and the tokens and dollars spent since
        each began) hold again; how many do. An agent that holds already (a launch made
        since) keeps its own."""
        restored = 0
        for run_id, quote, tokens, dollars in runs:
            if quote.agent in self._holds or run_id <= self._ended.get(quote.agent, 0):
                continue  # a launch made since holds its own; a run ended since holds none
            hold = _hold_of(quote)
            if not hold:
                continue
            spent = {"tokens": tokens, "usd": dollars}
            scoped = self._scopes(quote.agent)
            self._holds[quote.agent] = Taken(quote.agent, hold, scoped, run_id, spent)
            restored += 1
        return restored

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A fleet listener: a run that ended lets its hold go."""
        if event.kind in RELEASING:
            self.release(event.agent, event.run_id)

    def held(self, key: str, unit: str, *, but: str | None = None) -> Held:
        """What the live runs (``but`` one agent's) hold now against budget ``key``, in
        ``unit``."""
        amounts = [
            h.now(unit)
            for h in self._holds.values()
            if key in h.scopes and h.agent != but and h.now(unit) > 0
        ]
        return Held(sum(amounts), len(amounts))

    def of(self, agent: str) -> dict[str, float]:
        """What ``agent``'s run holds now, per unit (empty: nothing)."""
        found = self._holds.get(agent)
        if found is None:
            return {}
        return {unit: found.now(unit) for unit in found.hold if found.now(unit) > 0}


def _hold_of(quote: Quote) -> dict[str, float]:
    """What ``quote`` holds, per unit (empty: nothing)."""
    amounts = (("tokens", quote.hold_tokens), ("usd", quote.hold_usd))
    return {unit: amount for unit, amount in amounts if amount is not None and amount > 0}


def _over(key: str, unit: str, amounts: tuple[float, Held, float], limit: float) -> str | None:
    """Why a launch quoted ``quoted`` does not fit under budget ``key``'s ``limit`` in
    ``unit``, with ``spent`` used now and ``held`` by other runs (``None``: it fits). One
    quoted above what is left fits when nothing else holds and something is left."""
    spent, held, quoted = amounts
    if spent + held.amount + quoted <= limit:
        return None
    if not held.runs:
        if spent < limit:
            return None  # alone: its cap and the budget's limit bind it as usual
        return (
            f"{key}: {amount(spent, unit)} spent of {amount(limit, unit)}: waits for its "
            "window to reset"
        )
    runs = f"{held.runs} run{'s' if held.runs != 1 else ''}"
    return (
        f"{key}: {amount(spent, unit)} spent + {amount(held.amount, unit)} held by {runs} + "
        f"{amount(quoted, unit)} quoted > {amount(limit, unit)}: waits for a run to end"
    )


def amount(value: float, unit: str) -> str:
    """An amount in a budget's unit: ``$2.70`` or ``12,000 tokens``."""
    return usd(value) if unit == "usd" else units.tokens_words(value)
