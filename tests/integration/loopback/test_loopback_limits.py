"""The loopback servers (metering proxy, heartbeat endpoint) against slow and oversized
clients on real sockets: a client that trickles its headers or its body is cut off, and
headers past their cap are refused."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.connections.token import TOKEN_HEADER
from fleet.metering.config import MeteringSettings
from fleet.metering.proxy import MeteringProxy
from fleet.watchdog.heartbeat import HeartbeatServer

pytestmark = pytest.mark.integration

LIMIT = 0.5  # seconds the servers under test give a request's headers or body


@pytest.fixture
async def heartbeat(tmp_path: Path) -> AsyncIterator[HeartbeatServer]:
    async def on_beat(agent: str, kind: str) -> None:
        pass

    server = HeartbeatServer(tmp_path / "hb", on_beat, header_timeout=LIMIT, body_timeout=LIMIT)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[MeteringProxy]:
    async def sink(*_: object) -> None:
        pass

    route = ProviderRoute("anthropic", "http://127.0.0.1:9", ProviderApi.ANTHROPIC)
    server = MeteringProxy(
        tmp_path / "proxy",
        routes={"anthropic": route},
        sink=sink,
        settings=MeteringSettings(header_timeout=LIMIT, body_timeout=LIMIT),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _trickle(port: int, head: bytes, drip: Callable[[int], bytes]) -> tuple[float, bytes]:
    """Send ``head``, then one ``drip`` every 50 ms until the server answers or hangs up
    (at most 10 s); how long that took, and what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    answer = b""
    try:
        writer.write(head)
        for i in range(200):
            try:
                answer = await asyncio.wait_for(reader.read(65536), 0.05)
            except TimeoutError:
                writer.write(drip(i))
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                continue
            break
        return time.monotonic() - started, answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _header_drip(i: int) -> bytes:
    return f"X-Slow-{i}: a\r\n".encode()


Case = Callable[[HeartbeatServer, MeteringProxy], Awaitable[tuple[int, str]]]


async def _heartbeat_target(heartbeat: HeartbeatServer, _: MeteringProxy) -> tuple[int, str]:
    return heartbeat.port, "/heartbeat/coder-1"


async def _proxy_target(_: HeartbeatServer, proxy: MeteringProxy) -> tuple[int, str]:
    url = proxy.urls_for("coder-1")["anthropic"]
    return proxy.port, url.split(str(proxy.port), 1)[1] + "/v1/messages"


TARGETS = pytest.mark.parametrize("target", [_heartbeat_target, _proxy_target])


@TARGETS
async def test_a_client_trickling_its_headers_is_cut_off(
    heartbeat: HeartbeatServer, proxy: MeteringProxy, target: Case
) -> None:
    """Headers that never end are not waited for past the header deadline."""
    port, path = await target(heartbeat, proxy)
    elapsed, _ = await _trickle(port, f"POST {path} HTTP/1.1\r\n".encode(), _header_drip)
    assert elapsed < LIMIT + 2.0


@TARGETS
async def test_a_client_trickling_its_body_is_cut_off(
    heartbeat: HeartbeatServer, proxy: MeteringProxy, target: Case
) -> None:
    """A body that arrives a byte at a time is not waited for past the body deadline."""
    port, path = await target(heartbeat, proxy)
    token = heartbeat.token_for("coder-1")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\n{TOKEN_HEADER}: {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
    ).encode()
    elapsed, answer = await _trickle(port, head, lambda _: b" ")
    assert elapsed < LIMIT + 2.0
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize(("target", "line"), [(_heartbeat_target, 4000), (_proxy_target, 9000)])
async def test_oversized_headers_are_refused_and_not_logged(
    heartbeat: HeartbeatServer,
    proxy: MeteringProxy,
    target: Case,
    line: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A header line or a header count past the cap (the heartbeat's far smaller) gets a
    400, and none of the sender's text reaches the log."""
    port, path = await target(heartbeat, proxy)
    marker = "SENDER-TEXT"
    for extra in (
        f"X-Big: {marker}" + "a" * line + "\r\n",
        "".join(f"X-{marker}-{i}: a\r\n" for i in range(200)),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(65536), 5)
        finally:
            writer.close()
        assert answer.split(b" ", 2)[1] == b"400", answer[:40]
    assert marker not in caplog.text
