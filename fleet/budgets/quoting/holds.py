"""What live runs hold against the budgets: each launch takes its quote's hold at its
admission, in the same step as the check that it fits (nothing awaited between them, so
launches made at once never all see the same remainder), bound to its run once the run is
recorded, reduced as the run's metered usage arrives (the proxy's settle), and released
when the run ends or the launch did not start.

Held now, per unit: ``max(0, hold − spent since the run began)``. A hold counts against
every budget over its agent — the agent's own, its groups and their parents, the host,
account and provider scopes its requests go through, and global — each in the budget's
unit: what the budget has used now, plus what the other runs hold, plus this launch's
hold must fit under its limit; else the launch waits for a run to end (for the window's
reset, when no run holds anything). Everything here
answers from memory, on the event loop."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fleet.budgets.model import BudgetStatus
from fleet.budgets.quoting.words import usd
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.quotes import Quote

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

    def scopes_over(self, agent: str) -> Sequence[str]:
        """The scopes over ``agent``, most specific first, global last."""
        ...

    def live(self, key: str) -> tuple[BudgetStatus, float] | None:
        """Budget ``key`` as of the last tick, and what it has used now."""
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
        taken = Taken(agent, hold, frozenset(self._budgets.scopes_over(agent)))
        self._holds[agent] = taken
        return taken, None

    def no_room(self, agent: str, quote: Quote) -> str | None:
        """Why ``quote``'s hold does not fit under a budget over ``agent`` now (``None``:
        it fits under all of them), taking nothing."""
        hold = _hold_of(quote)
        for key in self._budgets.scopes_over(agent):
            found = self._budgets.live(key)
            if found is None or found[0].unit not in hold:
                continue
            why = _over(found[0], found[1], self.held(key, found[0].unit, but=agent), hold)
            if why is not None:
                return why
        return None

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
            self._ended[agent] = run_id
        found = self._holds.get(agent)
        if found is None or found.run_id is None:
            return
        if run_id is None or found.run_id == run_id:
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
            if quote.agent in self._holds:
                continue
            hold = _hold_of(quote)
            if not hold:
                continue
            spent = {"tokens": tokens, "usd": dollars}
            scoped = frozenset(self._budgets.scopes_over(quote.agent))
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


def _over(status: BudgetStatus, used: float, held: Held, hold: dict[str, float]) -> str | None:
    """Why ``hold`` does not fit under ``status``'s budget, with ``used`` spent now and
    ``held`` by other runs (``None``: it fits)."""
    unit, limit = status.unit, status.limit
    quoted = hold[unit]
    if used + held.amount + quoted <= limit:
        return None
    key = status.budget.key
    if not held.runs:  # no run's end makes room: only the window's reset does
        return (
            f"{key}: {amount(used, unit)} spent + {amount(quoted, unit)} quoted > "
            f"{amount(limit, unit)}, and no run holds anything: waits for its window to reset"
        )
    runs = f"{held.runs} run{'s' if held.runs != 1 else ''}"
    return (
        f"{key}: {amount(used, unit)} spent + {amount(held.amount, unit)} held by {runs} + "
        f"{amount(quoted, unit)} quoted > {amount(limit, unit)}: waits for a run to end"
    )


def amount(value: float, unit: str) -> str:
    """An amount in a budget's unit: ``$2.70`` or ``12,000 tokens``."""
    return usd(value) if unit == "usd" else f"{value:,.0f} tokens"
