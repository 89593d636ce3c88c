"""No model is free by accident: prices with a ``price_default``, the policy's refusal of a
model without a price under a budget in dollars (asked for, or stepped onto by a
downgrade), and check-config's warning about such budgets."""

from __future__ import annotations

from dataclasses import replace

from bot.cli.check.summary import summary as config_summary
from bot.config import Offered
from fleet.budgets.pacing.policy import PacingPolicy
from fleet.ledger.records.budgets import Budget
from fleet.metering.config import Price, PriceTable
from fleet.metering.counting.events import Tokens
from fleet.metering.policy import Estimate, Refuse, RequestInfo, Reservation
from fleet.names import AgentName
from tests.unit.bot.config.test_config import parse
from tests.unit.fleet.budgets.test_pacing_policy import (
    BUDGET,
    GOVERNING,
    GROUPS,
    HAIKU,
    MID,
    OPUS,
    status,
)

DOLLARS = Budget(BUDGET.scope, BUDGET.window, limit_usd=50.0, ladder=BUDGET.ladder)
TOKENS = Budget(BUDGET.scope, BUDGET.window, limit_tokens=1_000_000, ladder=BUDGET.ladder)


def policy_for(budget: Budget) -> PacingPolicy:
    policy = PacingPolicy(GROUPS)
    policy.update([status(0.5, budget=budget)], GOVERNING, MID)
    return policy


def reserve(policy: PacingPolicy, asked: str, served: str, usd: float | None) -> object:
    info = RequestInfo(AgentName("coder-1"), "anthropic", "messages", asked, True, MID)
    return policy.reserve(info, Estimate(1000, usd, served, 900))


def test_a_price_default_prices_every_model_the_table_does_not_list() -> None:
    """Listed models keep their own price; any other costs the fallback; none: no price."""
    tokens = Tokens(input=1_000_000, output=1_000_000)
    table = PriceTable({"a": Price(1.0, 2.0)}, fallback=Price(10.0, 20.0))
    assert table.cost(("a",), tokens) == 3.0
    assert table.cost(("other", None), tokens) == 30.0
    assert table.priced("other") and table.priced(None)
    bare = PriceTable({"a": Price(1.0, 2.0)})
    assert bare.cost(("other",), tokens) is None and not bare.priced("other")


def test_an_unpriced_model_under_a_budget_in_dollars_is_refused_naming_it_and_the_fix() -> None:
    """400 (no wait helps), naming the model, the budget, `prices` and `price_default`."""
    refused = reserve(policy_for(DOLLARS), "mystery-1", "mystery-1", None)
    assert isinstance(refused, Refuse) and refused.status == 400
    for part in ("'mystery-1'", "group:team", "`prices`", "`price_default`"):
        assert part in refused.reason


def test_a_downgrade_onto_an_unpriced_model_is_refused_saying_so() -> None:
    """The reason names the asked-for model and the rung it was stepped down to."""
    refused = reserve(policy_for(DOLLARS), OPUS, HAIKU, None)
    assert isinstance(refused, Refuse) and refused.status == 400
    assert f"steps {OPUS!r} down to {HAIKU!r}" in refused.reason


def test_priced_models_and_budgets_in_tokens_are_not_refused_for_a_missing_price() -> None:
    """A priced model reserves its dollars; a budget in tokens counts any model's tokens."""
    assert isinstance(reserve(policy_for(DOLLARS), OPUS, OPUS, 0.01), Reservation)
    assert isinstance(reserve(policy_for(TOKENS), "mystery-1", "mystery-1", None), Reservation)


CONFIG = (
    "agents:\n"
    "  - name: coder-1\n    model: mystery-1\n"
    "  - name: coder-2\n    model: claude-sonnet-4-5\n"
    "  - name: coder-3\n    model: mystery-2\n"
    "groups:\n  paid:\n    agents: [coder-3]\n"
    "prices:\n  claude-sonnet-4-5: {input: 3.0, output: 15.0}\n"
    "budgets:\n"
    "  - scope: global\n    limit_usd: 20.0\n    window: daily\n"
    "    ladder: {claude: [claude-sonnet-4-5, claude-haiku-4-5]}\n"
    "  - scope: group:paid\n    limit_tokens: 1000000\n    window: daily\n"
)


def warnings_of(text: str) -> list[str]:
    summary = config_summary(parse(text, offered=Offered(("stub", "claude"))), [])
    return [line for line in summary.splitlines() if line.startswith("warning:")]


def test_check_config_lists_budgets_in_dollars_over_agents_whose_models_have_no_price() -> None:
    """The dollar budget names its agent with an unpriced model and its unpriced rung; the
    agent under a budget in tokens and the priced one are not named."""
    lines = warnings_of(CONFIG)
    assert len(lines) == 2, lines
    agents, ladder = lines
    assert "budget global" in agents and "coder-1 (mystery-1)" in agents
    assert "coder-2" not in agents and "coder-3" not in agents
    assert "price_default" in agents
    assert "claude-haiku-4-5" in ladder and "claude-sonnet-4-5" not in ladder


def test_check_config_is_quiet_with_a_price_default() -> None:
    """A `price_default` prices every model: nothing to warn about."""
    assert warnings_of(CONFIG + "price_default: {input: 5.0, output: 25.0}\n") == []


def test_a_budget_with_both_limits_refuses_at_its_dollar_limit_too() -> None:
    """Tokens far from their limit, dollars reached: refused, and moved to refuse; a
    request's dollars count from its reservation until it settles."""
    both = Budget(BUDGET.scope, BUDGET.window, limit_tokens=10**9, limit_usd=1.0)
    policy = PacingPolicy(GROUPS)
    policy.update([replace(status(0.01, budget=both), usd_used=0.5)], GOVERNING, MID)
    first = reserve(policy, OPUS, OPUS, 0.3)
    assert isinstance(first, Reservation)
    second = reserve(policy, OPUS, OPUS, 0.3)  # 0.5 + 0.3 in flight: under $1
    assert isinstance(second, Reservation)
    policy.settle(first, 1000, 0.3)
    policy.settle(second, 1000, 0.25)  # $1.05 spent
    refused = reserve(policy, OPUS, OPUS, 0.01)
    assert isinstance(refused, Refuse) and "reached its limit" in refused.reason
    assert policy.refusing() == [(BUDGET.key, ("coder-1", "coder-2"))]
