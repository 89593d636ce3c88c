"""Tests for the ways back from budget settings made in chat and the words a budget's
changes are told in: ``unset_budget`` and ``end_burst`` on the running service over a real
ledger (surviving a new service), and the ``ask`` cutoff's words at the limit (holding,
its amount in dollars) and after a raise (raised, never "reset")."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from fleet.budgets.model import BudgetError, Source
from fleet.budgets.pacing.law import Spent, assess
from fleet.budgets.pacing.policy import PacingPolicy
from fleet.budgets.wording import limit_words
from fleet.ledger import Ledger
from fleet.ledger.records.budgets import Burst, Cutoff, Scope, Step
from fleet.metering.policy import ALLOW, Hold
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0
from tests.unit.fleet.budgets.test_budget_service import (
    ADMIN,
    DAY,
    HOUR,
    ask,
    book,
    daily,
    queued_team,
    record,
    use,
)
from tests.unit.fleet.budgets.test_budget_service import (
    sqlite_ledger as sqlite_ledger,
)
from tests.unit.fleet.budgets.test_pacing_policy import (
    BUDGET,
    END,
    GOVERNING,
    GROUPS,
    KEY,
    START,
    status,
)

# --- budget unset ---------------------------------------------------------------------------


async def test_unset_puts_back_the_configs_budget_and_a_new_service_keeps_it(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """A budget set by command, unset, gives way to the config's of its scope at once; the
    ledger forgets it, so a service started later has the config's too."""
    configured = daily("global")
    service = await book(sqlite_ledger, clock, configured)
    tight = daily("global", 1_000, source="command")
    await service.set_budget(tight, ADMIN)
    assert service.budgets() == [tight]

    removed, back = await service.unset_budget(Scope("global"), ADMIN)
    assert (removed, back) == (tight, configured)
    assert service.budgets() == [configured]
    assert await sqlite_ledger.budgets.command_budgets() == []

    later = await book(sqlite_ledger, clock, configured)
    assert later.budgets() == [configured]


async def test_unset_of_a_scope_the_config_has_no_budget_for_leaves_none(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """Unsetting a budget only chat gave a scope leaves that scope without one: its agents
    are let through (here from the queue it held them in) and a later service has none."""
    await record(sqlite_ledger, [use("coder-1", DAY + HOUR, 900_000)])
    service = await book(sqlite_ledger, clock)
    await service.set_budget(daily("group:team", source="command"), ADMIN)
    assert isinstance(ask(service, "coder-1"), Hold)

    removed, back = await service.unset_budget(Scope("group", "team"), ADMIN)
    assert removed.scope == Scope("group", "team") and back is None
    assert service.budgets() == []
    assert ask(service, "coder-1") == ALLOW
    assert (await book(sqlite_ledger, clock)).budgets() == []


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        (
            "global",
            "global's budget is the config's, not one set in chat: change it in the config "
            "file (`budget set` replaces it until `budget unset`)",
        ),
        ("group:ops", "group:ops has no budget to unset: `budget` lists the budgets"),
    ],
)
async def test_unset_refuses_what_chat_did_not_set(
    sqlite_ledger: Ledger, clock: ManualClock, scope: str, message: str
) -> None:
    """Only a budget set in chat can be unset: the config's, or none, is refused saying why,
    and nothing changes."""
    service = await book(sqlite_ledger, clock, daily("global"))
    with pytest.raises(BudgetError) as refused:
        await service.unset_budget(Scope.parse(scope), ADMIN)
    assert str(refused.value) == message
    assert service.budgets() == [daily("global")]


# --- budget end-burst ---------------------------------------------------------------------------


async def test_ending_a_burst_paces_its_agents_again_and_survives_a_restart(
    sqlite_ledger: Ledger, clock: ManualClock
) -> None:
    """A burst ended early no longer lets its agent through the queue, and a service
    started later does not take it in again; the grant stays on record."""
    service = await queued_team(sqlite_ledger, clock)
    burst = Burst(Scope("agent", "coder-1"), T0 + 2 * HOUR, ADMIN, "release day")
    await service.allow_burst(burst)
    assert ask(service, "coder-1") == ALLOW

    assert await service.end_burst(Scope("agent", "coder-1"), ADMIN) == 1
    assert isinstance(ask(service, "coder-1"), Hold)
    assert await sqlite_ledger.budgets.active_bursts(T0) == []
    later = await book(sqlite_ledger, clock, daily("group:team"))
    assert isinstance(ask(later, "coder-1"), Hold)
    assert await service.end_burst(Scope("agent", "coder-1"), ADMIN) == 0


# --- the ask cutoff's words ---------------------------------------------------------------------


def test_an_ask_budget_in_dollars_says_it_holds_requests_at_its_real_limit() -> None:
    """A $0.50 budget that asks, at its limit, says its limit in dollars (not ``0 usd``) and
    that requests are held (they are), with the command that raises it."""
    asking = replace(BUDGET, limit_tokens=None, limit_usd=0.5, cutoff=Cutoff.ASK, ladder={})
    now = END - timedelta(hours=6)
    at_limit = assess(
        asking,
        start=START,
        end=END,
        now=now,
        spent=Spent(used=0.5, limit=0.5, unit="usd", burn_rate=0.0),
        source=Source.METERING,
    )
    policy = PacingPolicy(GROUPS)
    [transition] = policy.update([at_limit], GOVERNING, now)
    assert transition.after is Step.REFUSE
    assert transition.message.startswith(
        f"{KEY} reached its limit ($0.50): holding requests and freezing its agents "
        f"(coder-1, coder-2); its operators are asked to raise it (`raise budget {KEY}`)"
    )
    assert "refusing" not in transition.message


def test_a_raise_at_the_limit_says_raised_never_reset() -> None:
    """Leaving the limit because the limit was raised (same window) says so; only a new
    window says the window has reset."""
    asking = replace(BUDGET, cutoff=Cutoff.ASK)
    now = END - timedelta(hours=6)
    policy = PacingPolicy(GROUPS)
    policy.update([status(2.0, now, budget=asking)], GOVERNING, now)
    raised = replace(asking, limit_tokens=2_000_000)
    after = replace(status(1.0, now, budget=raised), limit=2_000_000.0)
    [transition] = policy.update([after], GOVERNING, now + timedelta(seconds=1))
    assert (transition.before, transition.after) == (Step.REFUSE, Step.NONE)
    assert transition.message == (
        f"{KEY}'s limit was raised to 2,000,000 tokens: requests go through again; its "
        "frozen agents continue"
    )


def test_a_sub_cent_limit_is_said_as_set_never_as_nothing() -> None:
    """A $0.0001 limit reads `$0.0001` in the budget's words, not `$0.00`; tokens whole."""
    assert limit_words(0.0001, "usd") == "$0.0001"
    assert limit_words(0.5, "usd") == "$0.50"
    assert limit_words(50_000.0, "tokens") == "50,000 tokens"
