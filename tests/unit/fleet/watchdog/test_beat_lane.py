"""Tests for fleet.watchdog.beat_lane: whole, plainly written beats answered past aiohttp,
on the real endpoint, and everything else left to aiohttp with the same answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.watchdog.beat_lane import NO_CONTENT, read_beat
from fleet.watchdog.heartbeat import HeartbeatServer

AGENT = "coder-1"
DEADLINE = 10.0  # seconds any awaited event may take before the test fails
LIMITS = {"max_body": 4096, "max_line": 2048, "max_headers": 32}


def beat(token: str, body: bytes = b'{"state": "working"}', *, path: str = AGENT) -> bytes:
    return (
        f"POST /heartbeat/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-Fleetwarden-Token: {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Gate:
    """``on_beat``: records each beat, and holds it until :attr:`open` is set."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.entered = asyncio.Event()
        self.open = asyncio.Event()
        self.open.set()
        self.fail = False

    async def __call__(self, agent: str, kind: str) -> None:
        self.entered.set()
        await self.open.wait()
        if self.fail:
            raise RuntimeError("ledger is down")
        self.seen.append((agent, kind))


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def server(tmp_path: Path, gate: Gate) -> AsyncIterator[HeartbeatServer]:
    started = HeartbeatServer(tmp_path / "state", gate)
    await started.start()
    yield started
    await started.stop()


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One answer's status and body, read to its end."""
    async with asyncio.timeout(DEADLINE):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        body = await reader.readexactly(int(fields.get("content-length", "0")))
    return int(lines[0].split(" ")[1]), body


@pytest.fixture
async def conn(
    server: HeartbeatServer,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    yield reader, writer
    writer.close()


def test_a_whole_beat_is_read_and_anything_odd_is_not() -> None:
    """read_beat takes one whole plainly written beat; pieces, two at once, another path,
    a duplicated token, a chunked body or a close are left to aiohttp."""
    assert read_beat(beat("t"), **LIMITS) == (AGENT, "t", b'{"state": "working"}')
    assert read_beat(beat("t", b""), **LIMITS) == (AGENT, "t", b"")
    whole = beat("t")
    assert read_beat(whole[:-3], **LIMITS) is None
    assert read_beat(whole[:40], **LIMITS) is None
    assert read_beat(whole + whole, **LIMITS) is None
    queried = read_beat(beat("t", path=f"{AGENT}?x=1"), **LIMITS)  # no agent name: the
    assert queried is not None and queried[0] == f"{AGENT}?x=1"  # lane hands it on
    assert read_beat(whole.replace(b"/heartbeat/", b"/ask/"), **LIMITS) is None
    assert read_beat(whole.replace(b"HTTP/1.1", b"HTTP/1.0"), **LIMITS) is None
    doubled = whole.replace(b"Host:", b"X-Fleetwarden-Token: u\r\nHost:")
    assert read_beat(doubled, **LIMITS) is None
    for header in (b"Transfer-Encoding: chunked", b"Connection: close", b"Expect: 100-continue"):
        assert read_beat(whole.replace(b"Host: 127.0.0.1", header), **LIMITS) is None
    assert read_beat(whole.replace(b"Host:", b"Host :"), **LIMITS) is None
    assert read_beat(whole.replace(b"127.0.0.1", b"\xff"), **LIMITS) is None
    assert read_beat(beat("t", b"x" * 5000), **LIMITS) is None


async def test_a_beat_is_answered_only_once_recorded_and_the_connection_kept(
    server: HeartbeatServer,
    gate: Gate,
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """The 204 comes once on_beat has returned; the next beats go on the same connection."""
    reader, writer = conn
    token = server.token_for(AGENT)
    gate.open.clear()
    writer.write(beat(token))
    async with asyncio.timeout(DEADLINE):
        await gate.entered.wait()
    head = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not head.done()  # nothing answered while the beat is being recorded
    gate.open.set()
    async with asyncio.timeout(DEADLINE):  # the lane's answer: aiohttp's has more headers
        assert await head == NO_CONTENT
    writer.write(beat(token, b'{"state": "waiting"}'))
    assert await answer(reader) == (204, b"")
    assert gate.seen == [(AGENT, "working"), (AGENT, "waiting")]
    assert server.admission.in_flight(AGENT) == 0


async def test_what_the_lane_does_not_take_gets_aiohttps_answer_on_the_same_connection(
    server: HeartbeatServer,
    gate: Gate,
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """After beats answered past aiohttp, a bad body is aiohttp's 400, a wrong token its
    403, and beats after them, now aiohttp's, still 204; two at once answered in order."""
    reader, writer = conn
    token = server.token_for(AGENT)
    writer.write(beat(token))
    assert await answer(reader) == (204, b"")
    writer.write(beat(token, b'{"state": "sleeping"}'))
    assert (await answer(reader))[0] == 400
    writer.write(beat("wrong"))
    assert (await answer(reader))[0] == 403
    writer.write(beat(token) + beat(token, b'{"state": "waiting"}'))
    assert await answer(reader) == (204, b"")
    assert await answer(reader) == (204, b"")
    assert gate.seen == [(AGENT, "working"), (AGENT, "working"), (AGENT, "waiting")]


async def test_beats_in_two_at_once_and_a_failed_record_on_the_lane(
    server: HeartbeatServer,
    gate: Gate,
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """A beat that comes while the lane answers one waits for that answer; a beat the
    ledger could not take is answered 500."""
    reader, writer = conn
    token = server.token_for(AGENT)
    gate.open.clear()
    writer.write(beat(token))
    async with asyncio.timeout(DEADLINE):
        await gate.entered.wait()
    writer.write(beat(token, b'{"state": "waiting"}'))
    await writer.drain()
    gate.open.set()
    assert await answer(reader) == (204, b"")
    assert await answer(reader) == (204, b"")
    assert gate.seen == [(AGENT, "working"), (AGENT, "waiting")]
    gate.fail = True
    writer.write(beat(token))
    assert (await answer(reader))[0] == 500
