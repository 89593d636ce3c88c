"""The metering proxy's side of an agent's request: bodies compressed, huge, nested too
deep or trickled in, and the memory one request costs."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import socket
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.ledger import Ledger
from fleet.metering.config import MeteringSettings
from fleet.metering.policy import ALLOW, AllowAll, RequestInfo, Rewrite, Verdict
from fleet.metering.proxy import MeteringProxy
from fleet.metering.wire.body import MAX_REQUEST
from fleet.timing.clock import SystemClock
from tests.fakes.provider.server import FAKE_KEY, FakeProvider

pytestmark = pytest.mark.integration

AGENT = "coder-1"
MODEL = "claude-sonnet-4-5"


@dataclass
class Rig:
    fake: FakeProvider
    proxy: MeteringProxy
    ledger: Ledger
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.proxy.urls_for(AGENT)["anthropic"] + "/v1/messages"

    async def post(self, data: bytes, **headers: str) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "x-api-key": FAKE_KEY, **headers}
        async with self.http.post(self.url, data=io.BytesIO(data), headers=headers) as answer:
            return answer.status, await answer.json(content_type=None)


class Downgrade(AllowAll):
    def __init__(self, model: str) -> None:
        self.model = model

    def decide(self, request: RequestInfo) -> Verdict:
        return Rewrite(self.model, "over pace") if request.model == MODEL else ALLOW


@pytest.fixture
async def metering_requests_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with FakeProvider() as fake, aiohttp.ClientSession() as http:
        ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
        route = ProviderRoute("anthropic", fake.base_url, ProviderApi.ANTHROPIC)
        proxy = MeteringProxy(
            tmp_path / "state",
            routes={"anthropic": route},
            sink=ledger.metering.record_metering,
            settings=MeteringSettings(flush_interval=0.05, body_timeout=1.0),
        )
        await proxy.start()
        try:
            yield Rig(fake, proxy, ledger, http)
        finally:
            await proxy.stop()
            await ledger.close()


def message(model: str = MODEL, text: str = "héllo", **extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": text}]
    return {"model": model, "max_tokens": 1024, "stream": False, "messages": messages, **extra}


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_compressed_body_is_decoded_and_rewritten(
    metering_requests_rig: Rig, coding: str
) -> None:
    """A gzip or deflate body is read like any other: the policy's rewrite applies, and it
    goes upstream decoded, with no Content-Encoding."""
    metering_requests_rig.proxy.policy = Downgrade("claude-haiku-4-5")
    raw = json.dumps(message()).encode()
    data = gzip.compress(raw) if coding == "gzip" else zlib.compress(raw)
    status, _ = await metering_requests_rig.post(data, **{"Content-Encoding": coding})
    assert status == 200
    [request] = metering_requests_rig.fake.requests
    assert request.model == "claude-haiku-4-5"
    assert "content-encoding" not in request.headers
    assert request.body["messages"] == message()["messages"]
    await metering_requests_rig.proxy.recorder.flush()
    [event] = await metering_requests_rig.ledger.metering.usage_events()
    assert event.rewritten_from == MODEL


async def test_unknown_encodings_are_refused_naming_them(metering_requests_rig: Rig) -> None:
    """A body in an encoding the proxy cannot read is refused with 415, never forwarded."""
    status, error = await metering_requests_rig.post(b"\x00\x01", **{"Content-Encoding": "br"})
    assert status == 415
    assert "'br'" in error["error"]["message"]
    assert metering_requests_rig.fake.requests == []


async def test_a_decompression_bomb_stops_at_the_cap(metering_requests_rig: Rig) -> None:
    """A small gzip body that would decode to more than the cap is refused with 413."""
    bomb = gzip.compress(b"[" + b" " * (MAX_REQUEST + 10) + b"]", compresslevel=9)
    assert len(bomb) < 100_000
    status, error = await metering_requests_rig.post(bomb, **{"Content-Encoding": "gzip"})
    assert status == 413
    assert error["error"]["type"] == "request_too_large"
    assert metering_requests_rig.fake.requests == []


async def test_a_body_over_the_cap_is_refused_in_the_providers_shape(
    metering_requests_rig: Rig,
) -> None:
    """A body over 32 MiB is refused with 413 before it is read."""
    status, error = await metering_requests_rig.post(b" " * (MAX_REQUEST + 1))
    assert status == 413
    assert error["type"] == "error"
    assert metering_requests_rig.fake.requests == []


async def test_a_body_nested_too_deep_is_refused_not_a_crash(metering_requests_rig: Rig) -> None:
    """JSON nested deeper than the parser can go gets a 400 saying the body cannot be
    metered; the proxy keeps serving."""
    status, error = await metering_requests_rig.post(b"[" * 100_000 + b"]" * 100_000)
    assert status == 400
    assert "JSON object" in error["error"]["message"]
    status, error = await metering_requests_rig.post(
        b'{"model": "m", "x": ' + b"[" * 100_000 + b"}"
    )
    assert status == 400
    assert metering_requests_rig.fake.requests == []
    assert (await metering_requests_rig.post(json.dumps(message()).encode()))[0] == 200


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"model":"claude-haiku-4-5","model":"claude-opus-4-1","messages":[]}', "model"),
        (b'{"model":"m","max_tokens":10,"max_tokens":100000,"messages":[]}', "max_tokens"),
        (b'{"model":"m","stream":false,"stream":true,"messages":[]}', "stream"),
        (
            b'{"model":"m","stream_options":{"include_usage":false,"include_usage":true}}',
            "include_usage",
        ),
        (b'{"model":"m","mod\\u0065l":"other","messages":[]}', "model"),
    ],
)
async def test_a_key_given_twice_is_refused_naming_it(
    metering_requests_rig: Rig, raw: bytes, key: str
) -> None:
    """The proxy would meter the last of two values, a provider may serve the first: a
    body with a key twice (also escaped, also nested) is refused with 400, never forwarded."""
    status, error = await metering_requests_rig.post(raw)
    assert status == 400
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert f"the key {key!r} twice" in error["error"]["message"]
    assert metering_requests_rig.fake.requests == []
    await metering_requests_rig.proxy.recorder.flush()
    assert await metering_requests_rig.ledger.metering.usage_events() == []


def _raw_request(port: int, path: str, body: bytes) -> bytes:
    """POST ``body`` on a plain socket (no copies on the sending side), return the answer."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


async def test_a_big_body_costs_at_most_about_three_times_its_size(tmp_path: Path) -> None:
    """Peak memory while proxying a 16 MiB model request stays within ~3× the body: the
    body is held once, parsed once, and sent upstream without a copy."""
    drained: list[int] = []

    async def sink_upstream(request: web.Request) -> web.Response:
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
        drained.append(size)
        return web.json_response({"model": MODEL, "usage": {"input_tokens": 1, "output_tokens": 1}})

    app = web.Application()
    app.router.add_post("/v1/messages", sink_upstream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream = f"http://127.0.0.1:{runner.addresses[0][1]}"
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    proxy = MeteringProxy(
        tmp_path / "state",
        routes={"anthropic": ProviderRoute("anthropic", upstream, ProviderApi.ANTHROPIC)},
        sink=ledger.metering.record_metering,
    )
    await proxy.start()
    try:
        path = proxy.urls_for(AGENT)["anthropic"].split(str(proxy.port), 1)[1] + "/v1/messages"
        size = 16 * 1024 * 1024
        body = json.dumps(message(text="x" * size)).encode()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            answer = await asyncio.to_thread(_raw_request, proxy.port, path, body)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert answer.startswith(b"HTTP/1.1 200")
        assert drained == [len(body)]
        assert peak <= 3.3 * len(body), f"peak {peak / len(body):.1f}x the body"
    finally:
        await proxy.stop()
        await ledger.close()
        await runner.cleanup()
