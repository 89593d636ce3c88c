"""A pacing tick reads the ledger only once the usage the proxy recorded is in it
(``BudgetService.before_read``, the recorder's flush): what settled before the tick is then
counted once — from the ledger — and never missed, even when the rows are late."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.budgets import service as budget_service
from fleet.budgets.pacing.policy import PacingPolicy
from fleet.budgets.service import BudgetService
from fleet.clock import ManualClock
from fleet.errors import LedgerError
from fleet.ledger import Ledger
from fleet.metering.policy import Estimate, RequestInfo, Reservation
from fleet.names import AgentName
from tests.fakes.stores import budget_stores
from tests.unit.fleet.budgets.test_budget_service import DAY, GROUPS, HOUR, UTC_ZONE, daily, use

AT = DAY + 12 * HOUR


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(AT)


@pytest.fixture
async def ledger(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_path / "ledger.db", clock)
    yield opened
    await opened.close()


async def started(ledger: Ledger, clock: ManualClock) -> BudgetService:
    service = BudgetService(
        stores=budget_stores(ledger),
        budgets={"global": daily("global")},
        groups=GROUPS,
        timezone=UTC_ZONE,
        clock=clock,
        policy=PacingPolicy(GROUPS),
    )
    await service.start()
    return service


def settle_one(service: BudgetService, tokens: int) -> None:
    """One request of coder-1 reserved and settled at ``tokens``, as the proxy does once its
    answer has ended (its row handed to the recorder, not yet in the ledger)."""
    request = RequestInfo(AgentName("coder-1"), "anthropic", "messages", None, True, AT)
    claim = service.policy.reserve(request, Estimate(tokens=10))
    assert isinstance(claim, Reservation)
    service.policy.settle(claim, tokens, None)


def used(service: BudgetService) -> float:
    live = service.policy.live_status("global")
    assert live is not None
    return live[1]


async def test_a_tick_reads_the_ledger_after_the_recorded_usage_is_written(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The settled request's row reaches the ledger in the tick's ``before_read``: the tick
    counts it from the ledger and forgets its live amount — once, not twice or never."""
    service = await started(ledger, clock)
    settle_one(service, 600)
    assert used(service) == 600
    order: list[str] = []

    async def flush() -> None:
        order.append("flush")
        await ledger.metering.record_metering([use("coder-1", AT - HOUR, 600)], [])

    service.before_read = flush
    await service.tick()
    assert order == ["flush"]
    assert used(service) == 600


async def test_rows_that_are_late_are_counted_live_until_the_next_tick(
    ledger: Ledger, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger that does not take the rows within the wait: the tick goes on without
    forgetting anything, so the settled request still counts (live), never missed."""
    monkeypatch.setattr(budget_service, "BEFORE_READ_WAIT", 0.05)
    service = await started(ledger, clock)
    settle_one(service, 600)

    async def stuck() -> None:
        await asyncio.Event().wait()

    service.before_read = stuck
    await service.tick()
    assert used(service) == 600


async def test_rows_the_ledger_refuses_are_counted_live_and_the_tick_goes_on(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The recorder's flush says the ledger refused the rows: the tick goes on without
    forgetting anything, as for rows that are late."""
    service = await started(ledger, clock)
    settle_one(service, 600)

    async def refused() -> None:
        raise LedgerError("the metered usage recorded last is not in the ledger")

    service.before_read = refused
    await service.tick()
    assert used(service) == 600
