"""Every answer is counted: the real metering proxy, a real ledger and the budget service
against the fake provider streaming a long answer slowly. An agent that hangs up partway
(the drain cut short) or an upstream that breaks off leaves a ledger row — and a budget
live total — of at least what the agent received, in every API: the deltas that passed
are counted as they pass, and the input is estimated when the stream never said it."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
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
from fleet.metering.counting.events import Outcome, UsageEvent
from fleet.metering.proxy import MeteringProxy
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.stores import budget_stores
from tests.fakes.provider.bodies import key_headers
from tests.fakes.provider.server import Api, FakeProvider, Turn, Usage
from tests.integration.budgets.test_limits_bind import Board

pytestmark = pytest.mark.integration
T = TypeVar("T")

WORDS = " ".join(f"word{n:04d}" for n in range(1200))  # 1,200 deltas, ~2,900 tokens
LONG = Turn(text=WORDS, usage=Usage(input=5000, output=2900), delay_between_events=0.002)
PATHS: dict[Api, tuple[str, str, str]] = {
    "anthropic": ("anthropic", "/v1/messages", "claude-sonnet-4-5"),
    "responses": ("openai", "/v1/responses", "gpt-5-codex"),
    "chat": ("openai", "/v1/chat/completions", "gpt-4o-mini"),
}
BUDGET = Budget(
    Scope("global"), WindowSpec(WindowKind.ROLLING, timedelta(hours=5)), limit_tokens=10**8
)


@dataclass
class Rig:
    fake: FakeProvider
    proxy: MeteringProxy
    ledger: Ledger
    policy: PacingPolicy

    async def row(self) -> UsageEvent:
        """The one ledger row, once the proxy has written it."""

        async def written() -> list[UsageEvent]:
            await self.proxy.recorder.flush()
            return await self.ledger.metering.usage_events()

        [event] = await eventually(written)
        return event


async def eventually(probe: Callable[[], Awaitable[T]], within: float = 15.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + within
    while not (found := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing from {probe} within {within} s")
        await asyncio.sleep(0.05)
    return found


@pytest.fixture
async def cut_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = SystemClock()
    async with FakeProvider(default=LONG) as fake:
        ledger = await Ledger.open(tmp_path / "ledger.db", clock)
        policy = PacingPolicy(Groups())
        budgets = BudgetService(
            stores=budget_stores(ledger),
            budgets={BUDGET.key: BUDGET},
            groups=Groups(),
            timezone=ZoneInfo("UTC"),
            clock=clock,
            policy=policy,
            notices=Board(),
        )
        routes = {
            "anthropic": ProviderRoute("anthropic", fake.base_url, ProviderApi.ANTHROPIC),
            "openai": ProviderRoute("openai", fake.base_url, ProviderApi.OPENAI),
        }
        proxy = MeteringProxy(
            tmp_path / "state",
            routes=routes,
            sink=ledger.metering.record_metering,
            settings=MeteringSettings(flush_interval=0.05, drain_timeout=0.2),
            policy=policy,
        )
        try:
            await budgets.start()
            await proxy.start()
            yield Rig(fake, proxy, ledger, policy)
        finally:
            await proxy.stop()
            await budgets.drain()
            await ledger.close()


def body(api: Api) -> dict[str, Any]:
    model = PATHS[api][2]
    if api == "responses":
        return {"model": model, "stream": True, "input": "write a long answer"}
    messages = [{"role": "user", "content": "go"}]
    if api == "anthropic":
        return {"model": model, "max_tokens": 4096, "stream": True, "messages": messages}
    return {"model": model, "stream": True, "messages": messages}


def text_of(api: Api, data: bytes) -> str:
    """The text the complete SSE events in ``data`` carried to the agent."""
    text = []
    for event in data.split(b"\n\n")[:-1]:
        lines = [line[6:] for line in event.split(b"\n") if line.startswith(b"data: ")]
        if not lines or lines[0] == b"[DONE]":
            continue
        payload = json.loads(lines[0])
        if api == "anthropic" and payload.get("type") == "content_block_delta":
            text.append(payload["delta"].get("text", ""))
        elif api == "responses" and payload.get("type") == "response.output_text.delta":
            text.append(payload["delta"])
        elif api == "chat" and payload.get("choices"):
            text.append(payload["choices"][0]["delta"].get("content") or "")
    return "".join(text)


async def read_then_hang_up(rig: Rig, api: Api, at_least: int) -> str:
    """Stream an answer, hang up once ``at_least`` characters of text have arrived; the
    text received."""
    provider, path, _ = PATHS[api]
    url = rig.proxy.urls_for("coder-1")[provider] + path
    received, text = b"", ""
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body(api), headers=key_headers(api)) as response,
    ):
        assert response.status == 200
        while len(text) < at_least:
            chunk = await response.content.readany()
            assert chunk, "the stream ended before the agent hung up"
            done, _, received = (received + chunk).rpartition(b"\n\n")
            text += text_of(api, done + b"\n\n") if done else ""
        response.close()
    return text


@pytest.mark.parametrize("api", list(PATHS))
async def test_an_agent_hanging_up_mid_stream_is_counted_at_least_at_what_it_got(
    cut_rig: Rig, api: Api
) -> None:
    """The drain is cut long before the usage: the row is partial, with output at least
    the received text's estimate (bytes ÷ 4), input known or estimated, and the budget's
    live total holds at least as much."""
    text = await read_then_hang_up(cut_rig, api, at_least=2400)
    got = math.ceil(len(text.encode()) / 4)
    event = await cut_rig.row()
    assert event.tokens.output >= got > 550
    assert event.outcome is Outcome.PARTIAL and event.partial
    assert "drain" in event.reason and "counted from the deltas" in event.reason
    assert event.tokens.output < LONG.usage.output  # not the whole answer: what passed
    assert event.tokens.input + event.tokens.cache_read > 0

    async def emitted() -> bool:  # the fake notices the proxy's hang-up at its next write
        return bool(cut_rig.fake.emitted)

    await eventually(emitted)
    assert cut_rig.fake.emitted[0].cut  # the proxy did stop reading: the drain was cut
    assert cut_rig.policy.live.extra(BUDGET.key) >= event.tokens.total >= got


async def test_an_upstream_breaking_off_is_counted_at_least_at_what_passed(cut_rig: Rig) -> None:
    """A stream the provider cuts after 600 deltas, before its usage: the agent's answer is
    cut, and the row counts at least the text that reached it."""
    cut_rig.fake.add(Turn(text=WORDS, usage=LONG.usage, cut_after_events=603))
    provider, path, _ = PATHS["anthropic"]
    url = cut_rig.proxy.urls_for("coder-1")[provider] + path
    received = b""
    headers = key_headers("anthropic")
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body("anthropic"), headers=headers) as response,
    ):
        try:
            async for chunk in response.content.iter_any():
                received += chunk
        except aiohttp.ClientPayloadError:
            pass  # the cut reaches the agent as a cut
    got = math.ceil(len(text_of("anthropic", received).encode()) / 4)
    event = await cut_rig.row()
    assert event.outcome is Outcome.PARTIAL and "cut" in event.reason
    assert event.tokens.output >= got > 1000
    assert cut_rig.policy.live.extra(BUDGET.key) >= event.tokens.total
