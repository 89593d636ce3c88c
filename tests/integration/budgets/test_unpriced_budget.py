"""No model is free under a budget in dollars: the real metering proxy, a real ledger and
the budget service against the fake provider. A model with no price is refused before it
reaches the provider, in the provider's error shape, naming the model and the fix — also
after a priced model has met the limit; with a ``price_default`` it is served and
charged at that price until the limit refuses it too."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.budgets.model import Groups
from fleet.budgets.pacing.policy import PacingPolicy
from fleet.budgets.service import BudgetService
from fleet.ledger import Ledger
from fleet.ledger.records.budgets import Budget, Scope, WindowKind, WindowSpec
from fleet.metering.config import MeteringSettings, Price, PriceTable
from fleet.metering.counting.events import Outcome
from fleet.metering.proxy import MeteringProxy
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.stores import budget_stores
from tests.fakes.provider.server import FAKE_KEY, FakeProvider, Turn, Usage
from tests.integration.budgets.test_limits_bind import Board

pytestmark = pytest.mark.integration

PRICED, UNPRICED = "claude-sonnet-4-5", "claude-haiku-4-5"
SONNET = Price(3.0, 15.0)  # 900 in + 100 out: $0.0042 an answer
LIMIT_USD = 0.02  # five answers' worth


@dataclass
class Rig:
    proxy: MeteringProxy
    ledger: Ledger
    budgets: BudgetService


@pytest.fixture
async def unpriced_provider() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(default=Turn(usage=Usage(input=900, output=100))) as unpriced_provider:
        yield unpriced_provider


WINDOW = WindowSpec(WindowKind.ROLLING, timedelta(hours=5))
DOLLARS = Budget(Scope("global"), WINDOW, limit_usd=LIMIT_USD)


async def open_rig(
    tmp_path: Path, fake: FakeProvider, prices: PriceTable, budget: Budget = DOLLARS
) -> Rig:
    clock = SystemClock()
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    policy = PacingPolicy(Groups())
    budgets = BudgetService(
        stores=budget_stores(ledger),
        budgets={budget.key: budget},
        groups=Groups(),
        timezone=ZoneInfo("UTC"),
        clock=clock,
        policy=policy,
        notices=Board(),
    )
    await budgets.start()
    route = ProviderRoute("anthropic", fake.base_url, ProviderApi.ANTHROPIC)
    proxy = MeteringProxy(
        tmp_path / "state",
        routes={"anthropic": route},
        sink=ledger.metering.record_metering,
        settings=MeteringSettings(flush_interval=0.05),
        policy=policy,
        prices=prices,
    )
    try:
        await proxy.start()
    except BaseException:
        await budgets.drain()
        await ledger.close()
        raise
    return Rig(proxy, ledger, budgets)


async def close_rig(rig: Rig) -> None:
    await rig.proxy.stop()
    await rig.budgets.drain()
    await rig.ledger.close()


async def ask(http: aiohttp.ClientSession, url: str, model: str) -> tuple[int, dict[str, object]]:
    body = {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": FAKE_KEY, "anthropic-version": "2023-06-01"}
    async with http.post(f"{url}/v1/messages", json=body, headers=headers) as response:
        return response.status, json.loads(await response.read())


async def test_an_unpriced_model_is_refused_before_and_after_the_limit(
    tmp_path: Path, unpriced_provider: FakeProvider
) -> None:
    """Refused (400, never forwarded) with the model and the fix named; the priced model is
    served until the limit; then the unpriced one is still not served."""
    rig = await open_rig(tmp_path, unpriced_provider, PriceTable({PRICED: SONNET}))
    try:
        url = rig.proxy.urls_for("coder-1")["anthropic"]
        async with aiohttp.ClientSession() as http:
            status, body = await ask(http, url, UNPRICED)
            assert status == 400 and len(unpriced_provider.requests) == 0
            assert body["type"] == "error"
            message = str(body["error"]["message"])  # type: ignore[index]
            for part in (repr(UNPRICED), "`prices`", "`price_default`", "global"):
                assert part in message
            served = 0
            for _ in range(20):
                status, body = await ask(http, url, PRICED)
                if status == 429:
                    break
                served += 1
            assert status == 429 and "reached its limit" in json.dumps(body)
            assert 4 <= served <= 6
            forwarded = len(unpriced_provider.requests)
            status, _ = await ask(http, url, UNPRICED)
            assert status in (400, 429) and len(unpriced_provider.requests) == forwarded
        await rig.proxy.recorder.flush()
        events = await rig.ledger.metering.usage_events()
    finally:
        await close_rig(rig)
    refused = [e for e in events if e.requested_model == UNPRICED]
    assert len(refused) == 2 and all(e.outcome is Outcome.REFUSED for e in refused)


async def test_with_a_price_default_an_unlisted_model_is_charged_and_limited(
    tmp_path: Path, unpriced_provider: FakeProvider
) -> None:
    """Each answer of the unlisted model costs the fallback's price in the ledger, and the
    budget in dollars refuses it at the limit like any priced model."""
    prices = PriceTable({PRICED: SONNET}, fallback=Price(5.0, 25.0))  # $0.007 an answer
    rig = await open_rig(tmp_path, unpriced_provider, prices)
    try:
        url = rig.proxy.urls_for("coder-1")["anthropic"]
        statuses = []
        async with aiohttp.ClientSession() as http:
            for _ in range(10):
                statuses.append((await ask(http, url, UNPRICED))[0])
                if statuses[-1] != 200:
                    break
        await rig.proxy.recorder.flush()
        events = await rig.ledger.metering.usage_events()
    finally:
        await close_rig(rig)
    assert statuses[-1] == 429 and 3 <= statuses.count(200) <= 4
    answered = [e for e in events if e.outcome is Outcome.OK]
    assert answered and all(e.priced and e.cost_usd == pytest.approx(0.007) for e in answered)


async def test_a_budget_in_tokens_and_dollars_refuses_at_its_dollar_limit(
    tmp_path: Path, unpriced_provider: FakeProvider
) -> None:
    """Both limits bind: with tokens to spare for thousands of answers, the dollar limit
    refuses after its five answers' worth, and an unpriced model is refused under it."""
    both = Budget(Scope("global"), WINDOW, limit_tokens=10**8, limit_usd=LIMIT_USD)
    rig = await open_rig(tmp_path, unpriced_provider, PriceTable({PRICED: SONNET}), both)
    try:
        url = rig.proxy.urls_for("coder-1")["anthropic"]
        statuses = []
        async with aiohttp.ClientSession() as http:
            assert (await ask(http, url, UNPRICED))[0] == 400
            for _ in range(20):
                statuses.append((await ask(http, url, PRICED))[0])
                if statuses[-1] != 200:
                    break
    finally:
        await close_rig(rig)
    assert statuses[-1] == 429 and 4 <= statuses.count(200) <= 6
