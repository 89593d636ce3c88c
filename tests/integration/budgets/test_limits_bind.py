"""Hard limits bind on every request, not at the next pacing tick: the real metering proxy,
a real ledger and the budget service (ticked once, at start, and never again), against the
fake provider. 50 agents burst at once against one budget; the spend past the limit stays
within one in-flight request per agent, the refusals are in the provider's own shape with
``retry-after``, and the change is posted once. A budget crossed while Fleetwarden was
down is enforced on the first request after it starts.
"""

from __future__ import annotations

import asyncio
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
from fleet.metering.config import MeteringSettings
from fleet.metering.counting.events import Outcome
from fleet.metering.proxy import MeteringProxy
from fleet.notices import Delivery, Notice
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.stores import budget_stores
from tests.fakes.provider.server import Accepted, FakeProvider, Turn, Usage

pytestmark = pytest.mark.integration

KEY = "fake-limits-key"
PER_ANSWER = Usage(input=900, output=100)  # 1000 tokens an answer
AGENTS = 50


class Board:
    def __init__(self) -> None:
        self.posted: list[Notice] = []

    async def post(self, notice: Notice) -> Delivery:
        self.posted.append(notice)
        return Delivery()


@dataclass
class Rig:
    proxy: MeteringProxy
    ledger: Ledger
    budgets: BudgetService
    board: Board
    fake: FakeProvider


def global_budget(tokens: int) -> Budget:
    window = WindowSpec(WindowKind.ROLLING, timedelta(hours=5))
    return Budget(Scope("global"), window, limit_tokens=tokens)


async def open_rig(tmp_path: Path, fake: FakeProvider, budget: Budget) -> Rig:
    clock = SystemClock()
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    board = Board()
    policy = PacingPolicy(Groups())
    budgets = BudgetService(
        stores=budget_stores(ledger),
        budgets={budget.key: budget},
        groups=Groups(),
        timezone=ZoneInfo("UTC"),
        clock=clock,
        policy=policy,
        notices=board,
    )
    await budgets.start()
    route = ProviderRoute("anthropic", fake.base_url, ProviderApi.ANTHROPIC)
    proxy = MeteringProxy(
        tmp_path / "state",
        routes={"anthropic": route},
        sink=ledger.metering.record_metering,
        settings=MeteringSettings(flush_interval=0.05),
        policy=policy,
    )
    await proxy.start()
    return Rig(proxy, ledger, budgets, board, fake)


async def close_rig(rig: Rig) -> None:
    await rig.proxy.stop()
    await rig.budgets.drain()
    await rig.ledger.close()


@pytest.fixture
async def metered_provider() -> AsyncIterator[FakeProvider]:
    turn = Turn(usage=PER_ANSWER, delay_between_events=0.002)
    async with FakeProvider(
        default=turn, accept=Accepted(api_keys=frozenset({KEY}))
    ) as metered_provider:
        yield metered_provider


async def ask(
    http: aiohttp.ClientSession, url: str, stream: bool = True
) -> tuple[int, str | None, bytes]:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 200,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    async with http.post(f"{url}/v1/messages", json=body, headers=headers) as response:
        return response.status, response.headers.get("retry-after"), await response.read()


async def test_fifty_agents_bursting_overshoot_at_most_one_request_each(
    tmp_path: Path, metered_provider: FakeProvider
) -> None:
    limit = 30_000  # 30 answers' worth; the burst asks for far more
    rig = await open_rig(tmp_path, metered_provider, global_budget(limit))
    statuses: list[int] = []
    try:
        urls = [rig.proxy.urls_for(f"burst-{i}")["anthropic"] for i in range(AGENTS)]

        async def agent(url: str, http: aiohttp.ClientSession) -> None:
            for _ in range(10):
                status, retry_after, body = await ask(http, url)
                statuses.append(status)
                if status == 429:
                    assert retry_after is not None and float(retry_after) > 0
                    assert b'"type":"error"' in body.replace(b" ", b"")
                    assert b"reached its limit" in body
                    return

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            await asyncio.gather(*(agent(url, http) for url in urls))
        await rig.proxy.recorder.flush()
        events = await rig.ledger.metering.usage_events()
    finally:
        await close_rig(rig)
    spent = sum(e.tokens.total for e in events if e.outcome is Outcome.OK)
    answered = sum(1 for s in statuses if s == 200)
    assert spent >= limit, "the burst never reached the limit: it proves nothing"
    # Past the limit by at most one in-flight request per agent.
    assert spent - limit <= AGENTS * PER_ANSWER.input + AGENTS * PER_ANSWER.output
    assert answered < AGENTS * 10 // 2, "most requests should have been refused"
    assert statuses.count(429) == AGENTS  # every agent was refused, once each, then stopped
    limit_notices = [n for n in rig.board.posted if "reached its limit" in n.markdown]
    assert len(limit_notices) == 1, [n.markdown for n in rig.board.posted]


async def test_without_the_per_request_check_the_burst_runs_far_past(
    tmp_path: Path, metered_provider: FakeProvider
) -> None:
    """The control: the same burst with requests that reserve nothing (no budget governs
    them at the proxy) spends every answer — what the check above prevents."""
    rig = await open_rig(tmp_path, metered_provider, global_budget(30_000))
    rig.proxy.policy = PacingPolicy(Groups())  # a policy that has seen no tick
    try:
        urls = [rig.proxy.urls_for(f"burst-{i}")["anthropic"] for i in range(10)]
        async with aiohttp.ClientSession() as http:
            results = await asyncio.gather(*(ask(http, url) for url in urls for _ in range(5)))
    finally:
        await close_rig(rig)
    assert [status for status, _, _ in results].count(200) == 50


async def test_a_budget_crossed_while_down_is_enforced_on_the_first_request(
    tmp_path: Path, metered_provider: FakeProvider
) -> None:
    rig = await open_rig(tmp_path, metered_provider, global_budget(10_000_000))
    try:
        url = rig.proxy.urls_for("early")["anthropic"]
        async with aiohttp.ClientSession() as http:
            for _ in range(3):
                assert (await ask(http, url, stream=False))[0] == 200
    finally:
        await close_rig(rig)
    # Fleetwarden is down; the budget is lowered under what was spent; it starts again.
    again = await open_rig(tmp_path, metered_provider, global_budget(2_500))
    try:
        url = again.proxy.urls_for("early")["anthropic"]
        before = len(metered_provider.requests)
        async with aiohttp.ClientSession() as http:
            status, retry_after, body = await ask(http, url)
        assert status == 429 and retry_after is not None
        assert len(metered_provider.requests) == before, "the refused request reached the provider"
        assert b"global reached its limit" in body
    finally:
        await close_rig(again)
