"""A priced MCP call held and billed as a model request is
(:class:`~fleet.mcp.billing.PolicyBilling`), over the real run caps and pacing policy the
metering proxy consults: a budget at its limit or a run at its cap refuses it before it is
relayed, a queue refuses it for now, and a claim is billed at the price or let go."""

from __future__ import annotations

from datetime import timedelta

from fleet.budgets.pacing.policy import PacingPolicy
from fleet.budgets.runs.caps import CappedPolicy, RunCaps
from fleet.mcp.billing import LateBilling, PolicyBilling
from fleet.metering.policy import AllowAll
from fleet.model import RunBudget
from fleet.timing.clock import ManualClock
from tests.unit.fleet.budgets.test_pacing_policy import (
    END,
    GOVERNING,
    GROUPS,
    MID,
    NO_LADDER,
    climbed,
    status,
)

AGENT = "coder-1"


def billing(inner: PacingPolicy | AllowAll, caps: RunCaps, at: ManualClock) -> PolicyBilling:
    spent: list[tuple[str, int, float | None]] = []
    return PolicyBilling(lambda: CappedPolicy(inner, caps, lambda *s: spent.append(s)), at)


def test_a_budget_at_its_limit_refuses_a_priced_call() -> None:
    """A budget that reached its limit refuses the call, saying which and why."""
    policy = climbed(1)
    now = END - timedelta(hours=6)
    policy.update([status(2.0, now)], GOVERNING, now)
    said = billing(policy, RunCaps(), ManualClock(now)).claim(AGENT, "search", 0.5)
    assert isinstance(said, str)
    assert said.startswith("a call of the priced MCP server search is refused: ")
    assert "reached its limit" in said


def test_a_budget_queue_refuses_a_priced_call_for_now() -> None:
    """A budget over pace that queues its agent's requests refuses the call for now (the
    door holds no call waiting), saying to call again later."""
    policy = PacingPolicy(GROUPS)
    policy.update([status(1.35, budget=NO_LADDER)], GOVERNING, MID)
    said = billing(policy, RunCaps(), ManualClock(MID)).claim(AGENT, "search", 0.5)
    assert isinstance(said, str) and "refused for now (call again later)" in said


def test_a_claim_is_billed_at_the_price_or_let_go() -> None:
    """A claim settled at the price charges the run's cap; one let go (never relayed)
    charges nothing; at the cap the next claim is refused naming it."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_usd=1.0), MID)
    bills = billing(AllowAll(), caps, ManualClock(MID))
    let_go = bills.claim(AGENT, "search", 0.6)
    bills.settle(let_go, None)
    assert caps.cap_of(AGENT) == (RunBudget(max_usd=1.0), 0.0, 0.0)
    for _ in range(2):
        bills.settle(bills.claim(AGENT, "search", 0.6), 0.6)
    found = caps.cap_of(AGENT)
    assert found is not None and round(found[2], 6) == 1.2
    refused = bills.claim(AGENT, "search", 0.6)
    assert isinstance(refused, str) and "run capped at $1.00" in refused


def test_a_late_billing_bills_only_once_its_billing_is_opened() -> None:
    """Before the billing is opened a claim holds nothing and is allowed; after, the
    opened billing's verdict and settlement are the claim's."""
    opened: list[PolicyBilling] = []
    late = LateBilling(lambda: opened[0] if opened else None)
    early = late.claim(AGENT, "search", 0.6)
    assert early is None
    late.settle(early, 0.6)
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_usd=1.0), MID)
    opened.append(billing(AllowAll(), caps, ManualClock(MID)))
    for _ in range(2):
        late.settle(late.claim(AGENT, "search", 0.6), 0.6)
    found = caps.cap_of(AGENT)
    assert found is not None and round(found[2], 6) == 1.2
    refused = late.claim(AGENT, "search", 0.6)
    assert isinstance(refused, str) and "run capped at $1.00" in refused
