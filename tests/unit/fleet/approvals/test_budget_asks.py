"""Asks at a budget's limit (``cutoff: ask``) over a real ledger: the agents it froze are
kept frozen while the operators are asked once per window, in Fleetwarden's own words; a
✅ raises the limit by the offer of the record as ``budget set`` would; a ❌ stops the
agents it froze, as cut off; `raise budget` takes an amount in the limit's measure; the
freezing is :class:`~fleet.supervisor.cutoffs.CutoffKeeper`'s."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from fleet.approvals.service import Approvals
from fleet.approvals.spend import SpendAsks, SpendDenied, SpendError
from fleet.budgets.model import (
    BudgetError,
    BudgetStatus,
    PaceStatus,
    Source,
    Transition,
    parse_window,
)
from fleet.budgets.runs.caps import RunCaps
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalState, Decision
from fleet.ledger.records.budgets import Budget, Cutoff, Scope, Step
from fleet.supervisor.cutoffs import CutoffKeeper
from fleet.timing.clock import ManualClock
from fleet.transcript.story import Outcome
from tests.fakes.doubles.fleet import FakeFleet
from tests.unit.chat_fakes import T0

GLOBAL = Budget(Scope.parse("global"), parse_window("7d"), limit_usd=50.0, cutoff=Cutoff.ASK)


@dataclass
class Book:
    """The budgets, as the asks read and set them."""

    budget: Budget = GLOBAL
    set_by: list[tuple[Budget, str]] = field(default_factory=list)

    def budgets(self) -> list[Budget]:
        return [self.budget]

    async def statuses(self) -> list[BudgetStatus]:
        return [
            BudgetStatus(
                self.budget, T0, T0 + timedelta(days=7), T0, "usd", 50.0, 50.0, 1.0, 0.0, 50.0,
                None, PaceStatus.EXHAUSTED, Source.METERING, Step.REFUSE,
            )
        ]  # fmt: skip

    async def set_budget(self, budget: Budget, by: str) -> Budget:
        self.budget = budget
        self.set_by.append((budget, by))
        return budget


@dataclass
class Rig:
    asks: SpendAsks
    approvals: Approvals
    book: Book
    fleet: FakeFleet
    keeper: CutoffKeeper


@pytest.fixture
async def budget_asks_rig(ledger: Ledger, clock: ManualClock) -> Rig:
    fleet, book = FakeFleet(), Book()
    approvals = Approvals(ledger.approvals, clock)
    asks = SpendAsks(approvals, ledger.spend_asks, ledger.agents, ledger.runs, RunCaps(), fleet)
    asks.ask_for_budgets(book)
    await asks.start()
    return Rig(asks, approvals, book, fleet, CutoffKeeper(fleet, asks))  # type: ignore[arg-type]


async def at_limit(rig: Rig) -> str:
    """global runs out: coder and tester are frozen and the operators asked."""
    out = Transition("global", ("coder", "tester"), Step.QUEUE, Step.REFUSE, "at its limit")
    await rig.keeper.apply(out, Cutoff.ASK)
    [request] = await rig.approvals.pending()
    return request.id


async def test_at_its_limit_its_agents_are_frozen_and_asked_once_per_window(
    budget_asks_rig: Rig,
) -> None:
    """Both frozen under the budget's key; one ask, of no agent, offering half the limit;
    the limit reached again in the same window asks nothing more."""
    request_id = await at_limit(budget_asks_rig)
    assert budget_asks_rig.fleet.frozen_now == {"coder": "global", "tester": "global"}
    request = await budget_asks_rig.approvals.get(request_id)
    assert (request.agent, request.run_id, request.channel) == ("budget:global", 0, "spend")
    assert request.subject == "global reached its $50.00 limit (its agents: coder, tester)"
    assert request.detail.startswith("`raise budget global +$25`, or deny this ask (❌)")
    await at_limit(budget_asks_rig)
    fewer = Transition("global", ("coder",), Step.QUEUE, Step.REFUSE, "at its limit")
    await budget_asks_rig.keeper.apply(
        fewer, Cutoff.ASK
    )  # a restart, with fewer agents: not asked again
    assert [r.id for r in await budget_asks_rig.approvals.pending()] == [request_id]


async def test_a_yes_raises_the_limit_by_the_offer_as_budget_set_would(
    budget_asks_rig: Rig,
) -> None:
    """✅ sets the budget at $75.00 by whoever answered, as a command's budget."""
    request_id = await at_limit(budget_asks_rig)
    await budget_asks_rig.approvals.answer(
        request_id, by="@ann:x", decision=Decision.ALLOW, how="reaction"
    )
    assert budget_asks_rig.book.set_by == [
        (replace(GLOBAL, limit_usd=75.0, source="command"), "@ann:x")
    ]


async def test_a_no_stops_the_agents_it_froze_as_cut_off(budget_asks_rig: Rig) -> None:
    """❌ stops each agent the budget froze, recorded as cut off; the limit stays."""
    request_id = await at_limit(budget_asks_rig)
    await budget_asks_rig.approvals.answer(
        request_id, by="@ann:x", decision=Decision.DENY, how="command"
    )
    by = "@ann:x, at global's limit"
    assert budget_asks_rig.fleet.stopped == [
        ("coder", by, Outcome.CUT_OFF),
        ("tester", by, Outcome.CUT_OFF),
    ]
    assert budget_asks_rig.book.set_by == []


async def test_raise_budget_takes_an_amount_and_answers_the_ask(budget_asks_rig: Rig) -> None:
    """`raise budget global +$10` answers the ask and sets $60.00; an amount in tokens,
    or a budget that does not ask, is refused saying why."""
    request_id = await at_limit(budget_asks_rig)
    with pytest.raises(SpendError, match="not in tokens"):
        await budget_asks_rig.asks.raise_budget("global", "+50k", by="@ann:x")
    said = await budget_asks_rig.asks.raise_budget(
        "global", "+$10", by="@ann:x"
    )  # within the $25 offer
    assert said == "Raised global's limit by $10.00 to $60.00: its agents continue."
    request = await budget_asks_rig.approvals.get(request_id)
    assert request.state is ApprovalState.ALLOWED and request.how == "raise"
    with pytest.raises(SpendError, match="no budget 'agent:x' asks at its limit"):
        await budget_asks_rig.asks.raise_budget("agent:x", None, by="@ann:x")


async def test_nobody_answering_leaves_them_frozen(
    budget_asks_rig: Rig, clock: ManualClock
) -> None:
    """Past 30 minutes the ask times out; the agents stay frozen until the window resets."""
    await at_limit(budget_asks_rig)
    clock.advance(1801)
    [ended] = await budget_asks_rig.approvals.expire()
    assert ended.state is ApprovalState.TIMED_OUT
    assert budget_asks_rig.fleet.stopped == [] and set(budget_asks_rig.fleet.frozen_now) == {
        "coder",
        "tester",
    }


async def test_an_operator_only_answers_an_open_ask_by_at_most_its_offer(
    budget_asks_rig: Rig,
) -> None:
    """With no ask open, or past the $25.00 offered, an operator's `raise budget` is
    refused saying it needs the admin role, as `budget set` does; an admin may; nothing
    is raised or answered by a refusal."""
    with pytest.raises(SpendDenied, match=r"global has no open ask: .* needs the admin role"):
        await budget_asks_rig.asks.raise_budget("global", "+$5", by="@ann:x")
    request_id = await at_limit(budget_asks_rig)
    with pytest.raises(SpendDenied, match=r"its ask offers \$25.00 .* needs the admin role"):
        await budget_asks_rig.asks.raise_budget("global", "+$999999", by="@ann:x")
    assert budget_asks_rig.book.set_by == []
    assert (await budget_asks_rig.approvals.get(request_id)).state is ApprovalState.OPEN
    said = await budget_asks_rig.asks.raise_budget("global", "+$100", by="@root:x", admin=True)
    assert said == "Raised global's limit by $100.00 to $150.00: its agents continue."
    assert (await budget_asks_rig.approvals.get(request_id)).state is ApprovalState.ALLOWED


async def test_a_raise_that_fails_leaves_the_ask_open_and_a_yes_that_fails_is_settled(
    budget_asks_rig: Rig, ledger: Ledger
) -> None:
    """The book refuses the new limit: `raise budget` says why and the ask stays open and
    answerable; a ✅ whose raise fails settles the ask `frozen` (nothing raised, its
    agents stay frozen), never leaving its row unsettled."""
    request_id = await at_limit(budget_asks_rig)

    async def refused(budget: Budget, by: str) -> Budget:
        raise BudgetError("the ledger is read-only")

    budget_asks_rig.book.set_budget = refused  # type: ignore[method-assign]
    with pytest.raises(SpendError, match="global's limit was not raised: the ledger is read"):
        await budget_asks_rig.asks.raise_budget("global", None, by="@ann:x")
    assert (await budget_asks_rig.approvals.get(request_id)).state is ApprovalState.OPEN
    await budget_asks_rig.approvals.answer(
        request_id, by="@ann:x", decision=Decision.ALLOW, how="reaction"
    )
    row = await ledger.spend_asks.spend_ask(request_id)
    assert row is not None and (row.outcome, row.amount) == ("frozen", None)
    assert set(budget_asks_rig.fleet.frozen_now) == {"coder", "tester"}


async def test_a_stop_naming_a_budgets_ask_answers_nothing(budget_asks_rig: Rig) -> None:
    """`budget:global` names no agent: a stop by it answers no ask — the budget's stays
    open, nothing is stopped."""
    request_id = await at_limit(budget_asks_rig)
    assert not await budget_asks_rig.asks.stop_asked("budget:global", by="@ann:x")
    async with budget_asks_rig.asks.stopping("budget:global", by="@ann:x"):
        pass
    assert (await budget_asks_rig.approvals.get(request_id)).state is ApprovalState.OPEN
    assert budget_asks_rig.fleet.stopped == []
