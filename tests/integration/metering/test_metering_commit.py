"""The answer's usage is in the ledger before the agent gets the event that ends it — and
only that event waits: the real metering proxy and a real ledger whose writes the test
holds, against the fake provider's answer written in one piece (as a fast answer reaches
the proxy in one read). Everything before the final event reaches the agent while the write
is held; the final event only after the row is committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.ledger import Ledger
from fleet.metering.config import MeteringSettings
from fleet.metering.counting.events import QuotaSignal, UsageEvent
from fleet.metering.proxy import MeteringProxy
from fleet.timing.clock import SystemClock
from tests.fakes.provider.bodies import key_headers
from tests.fakes.provider.server import Api, FakeProvider, Turn, Usage
from tests.integration.metering.test_metering_cut import PATHS, body

pytestmark = pytest.mark.integration

ANSWER = Turn(text="a short answer, " * 20, usage=Usage(input=120, output=80))
FINAL: dict[Api, bytes] = {  # the event each API's stream ends with
    "anthropic": b"event: message_stop\n",
    "responses": b"event: response.completed\n",
    "chat": b"data: [DONE]\n\n",
}
EVENT_END = b"}\n\n"  # how each event before the final one ends: its JSON data, a blank line
WAIT = 10.0


@dataclass
class Rig:
    fake: FakeProvider
    proxy: MeteringProxy
    ledger: Ledger
    gate: asyncio.Event
    writing: asyncio.Event


async def in_one_piece(fake: FakeProvider) -> web.AppRunner:
    """An upstream that asks the fake and writes its whole answer with one write."""
    http = aiohttp.ClientSession(auto_decompress=False)

    async def answer(request: web.Request) -> web.StreamResponse:
        async with http.post(
            fake.base_url + request.path, data=await request.read(), headers=request.headers
        ) as asked:
            whole = await asked.read()
            response = web.StreamResponse(status=asked.status)
            response.content_type = asked.content_type
            await response.prepare(request)
            await response.write(whole)
            await response.write_eof()
            return response

    async def close(app: web.Application) -> None:
        await http.close()

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    app.on_cleanup.append(close)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


@pytest.fixture
async def held_commit_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    gate, writing = asyncio.Event(), asyncio.Event()
    async with FakeProvider(default=ANSWER) as fake:
        upstream = await in_one_piece(fake)
        base = f"http://127.0.0.1:{upstream.addresses[0][1]}"
        ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())

        async def held_sink(usage: Sequence[UsageEvent], signals: Sequence[QuotaSignal]) -> None:
            writing.set()
            await gate.wait()
            await ledger.metering.record_metering(usage, signals)

        routes = {
            "anthropic": ProviderRoute("anthropic", base, ProviderApi.ANTHROPIC),
            "openai": ProviderRoute("openai", base, ProviderApi.OPENAI),
        }
        proxy = MeteringProxy(
            tmp_path / "state",
            routes=routes,
            sink=held_sink,
            settings=MeteringSettings(flush_interval=60.0),
        )
        try:
            await proxy.start()
            yield Rig(fake, proxy, ledger, gate, writing)
        finally:
            gate.set()
            await proxy.stop()
            await ledger.close()
            await upstream.cleanup()


@pytest.mark.parametrize(
    ("api", "own_usage"),
    [("anthropic", True), ("responses", True), ("chat", True), ("chat", False)],
)
async def test_the_final_event_waits_for_the_commit_and_nothing_before_it_does(
    held_commit_rig: Rig, api: Api, own_usage: bool
) -> None:
    """``own_usage`` False: a Chat stream whose usage chunk the proxy asked for and hides."""
    provider, path, _ = PATHS[api]
    url = held_commit_rig.proxy.urls_for("coder-1")[provider] + path
    payload = body(api)
    if api == "chat" and own_usage:
        payload["stream_options"] = {"include_usage": True}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=payload, headers=key_headers(api)) as response,
    ):
        assert response.status == 200
        received = bytearray()
        up_to_an_event_end = asyncio.Event()

        async def read() -> None:
            async for chunk in response.content.iter_any():
                received.extend(chunk)
                if received.endswith(EVENT_END):
                    up_to_an_event_end.set()

        reader = asyncio.create_task(read())
        try:
            async with asyncio.timeout(WAIT):
                await held_commit_rig.writing.wait()
                # The write is held: what precedes the final event arrives all the same.
                await up_to_an_event_end.wait()
            await asyncio.sleep(0.2)  # and nothing more comes
            assert FINAL[api] not in received, "the final event went before its usage was in"
            assert not reader.done()
            assert await held_commit_rig.ledger.metering.usage_events() == []
            before = len(received)
            held_commit_rig.gate.set()
            async with asyncio.timeout(WAIT):
                await reader
        finally:
            reader.cancel()
        # Only the final event (and what follows it) waited for the commit.
        assert received[before:].startswith(FINAL[api]), bytes(received[before - 200 :])
        assert (b'"usage":{"prompt_tokens"' in received) is own_usage or api != "chat"
    [event] = await held_commit_rig.ledger.metering.usage_events()
    assert (event.tokens.input, event.tokens.output) == (120, 80)
