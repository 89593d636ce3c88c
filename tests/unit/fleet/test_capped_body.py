"""The capped-body reader: a whole body within its cap and deadline, each refusal, and the
one-buffer read of a body that says its length — over aiohttp's own stream, and through a
real server and client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol

from fleet.capped_body import LengthMismatch, OverCap, read_capped
from tests.fakes.loopback import LoopbackServer


@dataclass
class Message:
    """A body as aiohttp hands it over: its stream and the length its header says."""

    content: aiohttp.StreamReader
    content_length: int | None


def message(*chunks: bytes, declared: int | None = None, ended: bool = True) -> Message:
    stream = aiohttp.StreamReader(BaseProtocol(asyncio.get_running_loop()), 2**16)
    for chunk in chunks:
        stream.feed_data(chunk)
    if ended:
        stream.feed_eof()
    return Message(stream, declared)


async def test_a_body_within_the_cap_is_read_whole() -> None:
    """Chunks come back as one ``bytes``; a body of exactly the cap is taken."""
    body = await read_capped(message(b"abc", b"def", b"g" * 94), 100)
    assert body == b"abcdef" + b"g" * 94
    assert type(body) is bytes
    assert await read_capped(message(), 100) == b""


async def test_a_body_declared_over_the_cap_is_refused_before_it_is_read() -> None:
    """The header's length is enough: nothing is read from the stream."""
    sent = message(b"x" * 10, declared=101)
    with pytest.raises(OverCap) as caught:
        await read_capped(sent, 100)
    assert (caught.value.limit, caught.value.declared) == (100, 101)
    assert str(caught.value) == "the body says it has 101 bytes, over the 100 taken"
    assert await sent.content.read() == b"x" * 10


async def test_a_body_growing_over_the_cap_is_refused_as_it_comes() -> None:
    """Without a length, the cap's next byte refuses it; the rest is never taken."""
    sent = message(b"x" * 60, b"y" * 60, b"z" * 1000)
    with pytest.raises(OverCap) as caught:
        await read_capped(sent, 100)
    assert caught.value.declared is None
    assert str(caught.value) == "the body has more bytes, over the 100 taken"
    assert len(await sent.content.read()) > 1000


async def test_a_lost_connection_is_raised_as_aiohttp_raises_it() -> None:
    """A stream that fails mid-body raises its own error, for the caller to judge."""
    sent = message(b"half", ended=False)
    sent.content.set_exception(aiohttp.ClientPayloadError("cut"))
    with pytest.raises(aiohttp.ClientPayloadError):
        await read_capped(sent, 100)


async def test_an_exact_body_is_read_into_one_buffer_of_its_length() -> None:
    """``exact`` with a length gives a ``bytearray`` of just that length."""
    body = await read_capped(message(b"ab", b"cd", declared=4), 100, exact=True)
    assert body == bytearray(b"abcd")
    assert type(body) is bytearray


async def test_an_exact_body_without_a_length_grows_to_the_cap() -> None:
    """``exact`` without a length reads as any body, refused past the cap."""
    assert await read_capped(message(b"ab", b"cd"), 100, exact=True) == bytearray(b"abcd")
    with pytest.raises(OverCap):
        await read_capped(message(b"x" * 101), 100, exact=True)


async def test_an_exact_body_not_its_declared_length_is_refused() -> None:
    """Shorter or longer than its header says: :class:`LengthMismatch`."""
    for sent in (message(b"abc", declared=4), message(b"abc", b"de", declared=4)):
        with pytest.raises(LengthMismatch, match="does not match its Content-Length"):
            await read_capped(sent, 100, exact=True)


async def test_a_body_not_read_exact_trusts_only_the_cap() -> None:
    """A stream decoded on the way (gzip) is longer than its header: taken up to the cap."""
    assert await read_capped(message(b"x" * 50, declared=10), 100) == b"x" * 50


class Reading(LoopbackServer):
    """A server that reads each request with the reader and says what came of it."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/read", self._read)
        app.router.add_post("/slow", self._slow)
        app.router.add_get("/answer", self._answer)

    async def _read(self, request: web.Request) -> web.Response:
        try:
            body = await read_capped(request, 100, within=5.0)
        except OverCap as exc:
            return web.Response(status=413, text=f"{exc}")
        return web.Response(text=f"{len(body)} bytes")

    async def _slow(self, request: web.Request) -> web.Response:
        try:
            await read_capped(request, 100, within=0.1)
        except TimeoutError:
            return web.Response(status=408, text="too slow")
        return web.Response(text="in time")

    async def _answer(self, request: web.Request) -> web.Response:
        return web.Response(body=b"y" * int(request.query["size"]))


@pytest.fixture
async def capped_body_served() -> AsyncIterator[tuple[Reading, aiohttp.ClientSession]]:
    async with Reading() as server, aiohttp.ClientSession() as session:
        yield server, session


async def test_a_servers_request_is_read_declared_or_chunked(
    capped_body_served: tuple[Reading, aiohttp.ClientSession],
) -> None:
    """Through aiohttp's server: taken within the cap, refused past it with or without a
    Content-Length."""
    server, session = capped_body_served

    async def chunks(count: int) -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b"z" * 30

    url = server.base_url + "/read"
    async with session.post(url, data=b"x" * 100) as response:
        assert (response.status, await response.text()) == (200, "100 bytes")
    async with session.post(url, data=b"x" * 101) as response:
        assert response.status == 413
        assert await response.text() == "the body says it has 101 bytes, over the 100 taken"
    async with session.post(url, data=chunks(3)) as response:
        assert (response.status, await response.text()) == (200, "90 bytes")
    async with session.post(url, data=chunks(4)) as response:
        assert response.status == 413
        assert await response.text() == "the body has more bytes, over the 100 taken"


async def test_a_request_that_does_not_arrive_in_time_is_a_timeout(
    capped_body_served: tuple[Reading, aiohttp.ClientSession],
) -> None:
    """With ``within``, a sender that stops half way is :class:`TimeoutError`."""
    server, _ = capped_body_served
    port = int(server.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 5.0)
        assert status.startswith(b"HTTP/1.1 408")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_clients_answer_is_read_under_the_cap(
    capped_body_served: tuple[Reading, aiohttp.ClientSession],
) -> None:
    """Through aiohttp's client: an answer is taken or refused by its length."""
    server, session = capped_body_served
    async with session.get(server.base_url + "/answer?size=100") as response:
        assert await read_capped(response, 100) == b"y" * 100
    async with session.get(server.base_url + "/answer?size=101") as response:
        with pytest.raises(OverCap) as caught:
            await read_capped(response, 100)
        assert caught.value.declared == 101
