"""Request smuggling and pipelining against the real metering proxy and heartbeat endpoint,
on raw sockets: what a hostile agent writes on the wire never becomes a second request
upstream, a request past the key check, or a beat for another agent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.connections.token import TOKEN_HEADER
from fleet.metering.config import MeteringSettings
from fleet.metering.proxy import MeteringProxy
from fleet.watchdog.heartbeat import HeartbeatServer
from tests.fakes.provider.server import FAKE_KEY, FakeProvider

pytestmark = pytest.mark.integration

BODY = json.dumps(
    {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
).encode()


async def exchange(port: int, raw: bytes, answers: int = 1, within: float = 5.0) -> list[bytes]:
    """Write ``raw`` on one connection; the status lines of the answers that came back
    (until ``answers`` are in, the server hangs up, or ``within`` seconds pass)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    seen = b""
    try:
        writer.write(raw)
        await writer.drain()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(within):
                while len(_statuses(seen)) < answers and (chunk := await reader.read(65536)):
                    seen += chunk
    finally:
        writer.close()
    return _statuses(seen)


def _statuses(seen: bytes) -> list[bytes]:
    # An answer's status line follows the last one's body straight on: no line break.
    return re.findall(rb"HTTP/1\.[01] (\d{3}) ", seen)


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[tuple[MeteringProxy, FakeProvider, str]]:
    async def sink(*_: object) -> None:
        pass

    async with FakeProvider() as fake:
        route = ProviderRoute("anthropic", fake.base_url, ProviderApi.ANTHROPIC)
        server = MeteringProxy(
            tmp_path / "proxy",
            routes={"anthropic": route},
            sink=sink,
            settings=MeteringSettings(flush_interval=0.05),
        )
        await server.start()
        try:
            path = server.urls_for("coder-1")["anthropic"].split(str(server.port), 1)[1]
            yield server, fake, path + "/v1/messages"
        finally:
            await server.stop()


def head(path: str, *lines: str) -> bytes:
    extra = "".join(f"{line}\r\n" for line in lines)
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {FAKE_KEY}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def chunked(body: bytes, trailer: bytes = b"") -> bytes:
    return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n" + trailer + b"\r\n"


SMUGGLED = {
    "content-length and chunked": lambda p: (
        head(p, f"Content-Length: {len(BODY)}", "Transfer-Encoding: chunked") + chunked(BODY)
    ),
    "two content-lengths": lambda p: (
        head(p, f"Content-Length: {len(BODY)}", "Content-Length: 5") + BODY
    ),
    "the same content-length twice": lambda p: (
        head(p, f"Content-Length: {len(BODY)}", f"Content-Length: {len(BODY)}") + BODY
    ),
    "a content-length in the trailer": lambda p: (
        head(p, "Transfer-Encoding: chunked") + chunked(BODY, b"Content-Length: 0\r\n")
    ),
}


@pytest.mark.parametrize("case", list(SMUGGLED))
async def test_ambiguous_framing_is_refused_before_the_provider(
    proxy: tuple[MeteringProxy, FakeProvider, str], case: str
) -> None:
    """A body whose length two headers disagree on (CL+TE, two Content-Lengths, a length in
    the chunked trailer) gets a 400 and nothing reaches the provider."""
    server, fake, path = proxy
    assert await exchange(server.port, SMUGGLED[case](path)) == [b"400"]
    assert fake.requests == []


async def test_a_chunked_trailer_goes_no_further(
    proxy: tuple[MeteringProxy, FakeProvider, str],
) -> None:
    """A chunked body with a trailer is metered as its body alone: the provider gets one
    request with exactly that body and a Content-Length, no trailer, no chunking."""
    server, fake, path = proxy
    raw = head(path, "Transfer-Encoding: chunked", "Trailer: X-Evil") + chunked(
        BODY, b"X-Evil: 1\r\n"
    )
    assert await exchange(server.port, raw) == [b"200"]
    [sent] = fake.requests
    assert sent.raw == BODY
    assert sent.headers["Content-Length"] == str(len(BODY))
    for name in ("X-Evil", "Trailer", "Transfer-Encoding"):
        assert name not in sent.headers


async def test_expect_continue_sends_one_request(
    proxy: tuple[MeteringProxy, FakeProvider, str],
) -> None:
    """``Expect: 100-continue`` gets the interim 100 and then the one answer; the provider
    sees one request with exactly the declared body."""
    server, fake, path = proxy
    raw = head(path, f"Content-Length: {len(BODY)}", "Expect: 100-continue") + BODY
    assert await exchange(server.port, raw, answers=2) == [b"100", b"200"]
    [sent] = fake.requests
    assert sent.raw == BODY


async def test_a_websocket_upgrade_is_never_switched(
    proxy: tuple[MeteringProxy, FakeProvider, str],
) -> None:
    """A websocket ``Upgrade`` on an agent URL is answered as plain HTTP (never 101) and
    reaches no provider."""
    server, fake, path = proxy
    raw = (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ).encode()
    [status] = await exchange(server.port, raw)
    assert status != b"101"
    assert fake.requests == []


async def test_a_pipelined_request_is_checked_on_its_own(
    proxy: tuple[MeteringProxy, FakeProvider, str],
) -> None:
    """A second request written right after a good one on the same connection, with a
    wrong key, is answered 403 on its own; the provider sees only the first."""
    server, fake, path = proxy
    forged = path.replace(path.split("/")[4], "not-the-key")
    raw = head(path, f"Content-Length: {len(BODY)}") + BODY
    raw += head(forged, f"Content-Length: {len(BODY)}") + BODY
    assert await exchange(server.port, raw, answers=2) == [b"200", b"403"]
    [sent] = fake.requests
    assert sent.raw == BODY


async def test_a_pipelined_beat_for_another_agent_is_refused(tmp_path: Path) -> None:
    """At the heartbeat endpoint: ambiguous framing gets a 400, and a beat for another
    agent pipelined behind a good one, carrying the sender's own token, is refused; only
    the sender's beat is recorded."""
    seen: list[tuple[str, str]] = []

    async def on_beat(agent: str, kind: str) -> None:
        seen.append((agent, kind))

    server = HeartbeatServer(tmp_path / "hb", on_beat)
    await server.start()
    try:
        mine = server.token_for("coder-1")
        server.token_for("coder-2")

        def beat(agent: str, *lines: str) -> bytes:
            extra = "".join(f"{line}\r\n" for line in lines)
            return (
                f"POST /heartbeat/{agent} HTTP/1.1\r\nHost: x\r\n{TOKEN_HEADER}: {mine}\r\n"
                f"{extra}\r\n"
            ).encode()

        body = b'{"state": "working"}'
        both = beat("coder-1", f"Content-Length: {len(body)}") + body
        both += beat("coder-2", f"Content-Length: {len(body)}") + body
        assert await exchange(server.port, both, answers=2) == [b"204", b"403"]
        clte = beat("coder-2", "Content-Length: 2", "Transfer-Encoding: chunked") + chunked(body)
        assert await exchange(server.port, clte) == [b"400"]
        twice = beat("coder-2", f"Content-Length: {len(body)}", "Content-Length: 0") + body
        assert await exchange(server.port, twice) == [b"400"]
        assert seen == [("coder-1", "working")]
    finally:
        await server.stop()
