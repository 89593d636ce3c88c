"""What live runs hold against the budgets: a launch takes its quote's hold when it fits
under every budget over its agent (else says why it waits), the hold is bound to its run,
comes down as the run's usage settles, and is let go when the run ends or the launch did
not start; rebuilt at start from the open runs."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from fleet.budgets.model import BudgetStatus, Source
from fleet.budgets.pacing.law import Spent, assess
from fleet.budgets.quoting.holds import Held, Holds
from fleet.budgets.quoting.quote import quote_of
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger
from fleet.ledger.records.budgets import Budget, Scope, WindowKind, WindowSpec
from fleet.ledger.records.quotes import Quote
from fleet.model import AgentState, RunBudget
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0
from tests.unit.fleet.budgets import test_budget_service as service_test

DAY = WindowSpec(WindowKind.ROLLING, timedelta(days=1))


def status(scope: Scope, limit: float, used: float, unit: str = "usd") -> BudgetStatus:
    budget = Budget(
        scope,
        DAY,
        limit_tokens=int(limit) if unit == "tokens" else None,
        limit_usd=limit if unit == "usd" else None,
    )
    return assess(
        budget,
        start=T0,
        end=T0 + timedelta(days=1),
        now=T0 + timedelta(hours=1),
        spent=Spent(used=used, limit=limit, unit=unit, burn_rate=0.0),
        source=Source.METERING,
    )


class Book:
    """The budgets as holds read them: each agent in group ``team`` on account ``acct``."""

    def __init__(self, *statuses: BudgetStatus) -> None:
        self.statuses = {s.budget.key: s for s in statuses}
        self.extra: dict[str, float] = {}  # spent since the tick (live)

        self.dollars: dict[str, float] = {}  # budgets with both limits: dollars used now

    def governing_key(self, agent: str) -> str | None:
        chain = [f"agent:{agent}", "group:team", "account:acct", "global"]
        return next((key for key in chain if key in self.statuses), None)

    def live(self, key: str) -> tuple[BudgetStatus, float] | None:
        found = self.statuses.get(key)
        return None if found is None else (found, found.used + self.extra.get(key, 0.0))

    def live_dollars(self, key: str) -> float | None:
        return self.dollars.get(key)


def capped(agent: str, usd: float) -> Quote:
    return quote_of(agent, "claude", None, [], RunBudget(None, usd), T0)


def ended(agent: str, run_id: int) -> FleetEvent:
    return FleetEvent(AgentName(agent), EventKind.ENDED, AgentState.EXITED, "", False, run_id)


def test_launches_take_holds_until_the_budget_is_full_then_wait_saying_why() -> None:
    """$0.40 spent of $3.50: three holds of $0.90 fit ($3.10), a fourth does not."""
    book = Book(status(Scope("global"), 3.5, 0.4))
    holds = Holds(book)
    for n in range(3):
        taken, why = holds.admit(f"a{n}", capped(f"a{n}", 0.9))
        assert taken is not None and why is None
    taken, why = holds.admit("a3", capped("a3", 0.9))
    assert taken is None
    assert why == (
        "global: $0.40 spent + $2.70 held by 3 runs + $0.90 quoted > $3.50: waits for a run to end"
    )
    assert holds.held("global", "usd").runs == 3 and holds.of("a3") == {}
    book.extra["global"] = 1.0  # what the budget has spent since the tick counts too
    holds.spend("a0", 0, 0.9)  # ... and the run that spent it holds that much less
    assert holds.admit("a3", capped("a3", 0.9))[1] == (
        "global: $1.40 spent + $1.80 held by 2 runs + $0.90 quoted > $3.50: waits for a run to end"
    )


def test_the_budget_that_governs_the_agent_is_checked_in_its_own_unit() -> None:
    """The group's budget in tokens governs (the scope rule: the most specific); global,
    in dollars, governs nobody here and holds nothing back."""
    book = Book(
        status(Scope("global"), 100.0, 0.0),
        status(Scope("group", "team"), 50_000, 10_000, unit="tokens"),
    )
    holds = Holds(book)
    quote = quote_of("a", "claude", None, [(1, 30_000, 0.5)], None, T0)
    assert holds.admit("a", quote)[1] is None
    _, why = holds.admit("b", quote_of("b", "claude", None, [(2, 30_000, 0.5)], None, T0))
    assert why is not None and why.startswith(
        "group:team: 10,000 tokens spent + 30,000 tokens held by 1 run + 30,000 tokens quoted"
    )
    # The roster's own launches take their hold whatever.
    taken, why = holds.admit("b", quote_of("b", "claude", None, [(2, 30_000, 0.5)], None, T0),
                             check=False)  # fmt: skip
    assert taken is not None and why is None
    assert holds.held("group:team", "tokens").amount == 60_000


def test_a_quote_that_holds_nothing_takes_nothing() -> None:
    holds = Holds(Book(status(Scope("global"), 1.0, 0.99)))
    taken, why = holds.admit("a", quote_of("a", "claude", None, [], None, T0))
    assert (taken, why) == (None, None) and holds.held("global", "usd").runs == 0


def test_usage_brings_a_hold_down_and_its_run_s_end_lets_it_go() -> None:
    holds = Holds(Book(status(Scope("global"), 3.0, 0.0)))
    taken, _ = holds.admit("a", capped("a", 2.0))
    assert taken is not None
    holds.bind(taken, 41)
    holds.spend("a", 1_000, 0.5)
    holds.spend("other", 1_000, 0.5)  # another agent's usage is not this run's
    assert holds.of("a") == {"usd": 1.5}
    asyncio.run(holds.on_fleet_event(ended("a", 40)))  # an earlier run's end: kept
    assert holds.of("a") == {"usd": 1.5}
    asyncio.run(holds.on_fleet_event(ended("a", 41)))
    assert holds.of("a") == {} and holds.held("global", "usd").runs == 0


def test_a_run_that_spent_past_its_hold_holds_nothing_more() -> None:
    holds = Holds(Book(status(Scope("global"), 3.0, 0.0)))
    holds.admit("a", capped("a", 2.0))
    holds.spend("a", 5_000, 2.5)
    assert holds.of("a") == {} and holds.held("global", "usd") == Held(0.0, 0)


def test_a_launch_that_did_not_start_lets_its_own_hold_go_only() -> None:
    holds = Holds(Book(status(Scope("global"), 3.0, 0.0)))
    first, _ = holds.admit("a", capped("a", 1.0))
    assert first is not None
    holds.bind(first, 7)
    second, why = holds.admit("a", capped("a", 1.0))  # the agent runs: nothing more taken
    assert (second, why) == (None, None)
    assert holds.of("a") == {"usd": 1.0}
    holds.let_go(first)
    assert holds.of("a") == {}


def test_a_run_that_ended_before_it_was_bound_holds_nothing() -> None:
    holds = Holds(Book(status(Scope("global"), 3.0, 0.0)))
    taken, _ = holds.admit("a", capped("a", 1.0))
    assert taken is not None
    asyncio.run(holds.on_fleet_event(ended("a", 9)))  # unbound: its launch decides
    assert holds.of("a") == {"usd": 1.0}
    holds.bind(taken, 9)
    assert holds.of("a") == {}


def test_the_open_runs_hold_again_at_start_less_what_they_spent() -> None:
    holds = Holds(Book(status(Scope("global"), 3.0, 0.0)))
    assert (
        holds.restore(
            [
                (5, capped("a", 2.0), 100.0, 0.5),
                (6, quote_of("b", "claude", None, [], None, T0), 0.0, 0.0),  # holds nothing
            ]
        )
        == 1
    )
    assert holds.of("a") == {"usd": 1.5}
    asyncio.run(holds.on_fleet_event(ended("a", 5)))
    assert holds.of("a") == {}


async def test_the_budget_service_counts_holds_against_the_governing_budget_only(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Over the real service: a hold counts against the budget that governs its agent (the
    scope rule: group:eng for coder-1, global for ops-1), in its unit; the statuses carry
    what is held."""
    made = service_test
    at = made.DAY + made.HOUR
    await made.record(ledger, [made.use("coder-1", at, 1_000, cost=0.4)])
    service = await made.book(
        ledger, clock, made.daily("global", None, limit_usd=3.0), made.daily("group:eng", 100_000)
    )
    holds = service.holds
    assert service.governing_key("coder-1") == "group:eng"
    assert service.governing_key("ops-1") == "global"
    quote = quote_of("coder-1", "claude", None, [(1, 60_000, 2.0)], None, T0)
    assert holds.admit("coder-1", quote)[1] is None
    _, why = holds.admit("coder-2", quote_of("coder-2", "claude", None, [(2, 60_000, 0.5)],
                                             None, T0))  # fmt: skip
    assert why == (
        "group:eng: 1,000 tokens spent + 60,000 tokens held by 1 run + 60,000 tokens quoted "
        "> 100,000 tokens: waits for a run to end"
    )
    # coder-1's $2.00 is held against group:eng, which governs it, not against global.
    assert (
        holds.admit("ops-1", quote_of("ops-1", "claude", None, [(3, 10, 0.9)], None, T0))[1] is None
    )
    held = {s.budget.key: (s.held, s.holding) for s in await service.statuses()}
    assert held == {"global": (0.9, 1), "group:eng": (60_000.0, 1)}


async def test_a_quote_above_what_is_left_starts_alone_and_never_waits_for_nothing(
    ledger: Ledger, clock: ManualClock
) -> None:
    """$2.50 spent of $3.00 and a $0.90 quote: nothing else holds, so no run's end would
    ever make room — it starts, alone (its cap and the limit bind it); a second launch
    then waits for it; at the limit, only the reset makes room."""
    made = service_test
    at = made.DAY + made.HOUR
    await made.record(ledger, [made.use("coder-1", at, 1_000, cost=2.5)])
    service = await made.book(ledger, clock, made.daily("global", None, limit_usd=3.0))
    quote = quote_of("coder-2", "claude", None, [(1, 60_000, 0.9)], None, T0)
    taken, why = service.holds.admit("coder-2", quote)
    assert taken is not None and why is None
    _, why = service.holds.admit("coder-3", quote_of("coder-3", "claude", None,
                                                     [(2, 60_000, 0.9)], None, T0))  # fmt: skip
    assert why == (
        "global: $2.50 spent + $0.90 held by 1 run + $0.90 quoted > $3.00: waits for a run to end"
    )
    await made.record(ledger, [made.use("coder-1", at, 1_000, cost=0.6)])
    await service.tick()
    service.holds.let_go(taken)
    _, why = service.holds.admit("coder-3", quote_of("coder-3", "claude", None,
                                                     [(2, 60_000, 0.9)], None, T0))  # fmt: skip
    assert why == "global: $3.10 spent of $3.00: waits for its window to reset"


def test_a_budget_with_limits_in_both_measures_holds_in_dollars_too() -> None:
    """1M tokens and $3.00: tokens have room, dollars do not ($2.90 spent + $1.00 held +
    $1.00 quoted): the launch waits."""
    both = status(Scope("global"), 1_000_000, 1_000, unit="tokens")
    both = replace(both, budget=replace(both.budget, limit_usd=3.0))
    book = Book(both)
    book.dollars["global"] = 2.0
    holds = Holds(book)
    quote = quote_of("a", "claude", None, [(1, 10_000, 1.0)], None, T0)
    assert holds.admit("a", quote)[1] is None
    _, why = holds.admit("b", quote_of("b", "claude", None, [(2, 10_000, 1.0)], None, T0))
    assert why == (
        "global: $2.00 spent + $1.00 held by 1 run + $1.00 quoted > $3.00: waits for a run to end"
    )


def test_a_hold_whose_runs_end_was_missed_goes_with_a_later_end_and_is_not_restored() -> None:
    """A run that ended while its hold was being restored (or unseen) holds nothing: the
    restore skips it, and a later run's end lets a stale hold go."""
    holds = Holds(Book(status(Scope("global"), 10.0, 0.0)))
    asyncio.run(holds.on_fleet_event(ended("a", 5)))  # ended before the restore took it
    assert holds.restore([(5, capped("a", 2.0), 0.0, 0.0)]) == 0
    assert holds.restore([(6, capped("b", 2.0), 0.0, 0.0)]) == 1
    asyncio.run(holds.on_fleet_event(ended("b", 7)))  # run 6's end was missed
    assert holds.of("b") == {}
