"""Connection caps of the real metering proxy and heartbeat endpoint on real sockets: a new
connection that sends nothing is closed after the short idle deadline, idle connections
make room for new ones at the cap, a cap reached with every connection busy is a refusal
(not a collapse), and one agent's requests at once are capped while another's still pass."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.connections.token import TOKEN_HEADER
from fleet.metering.config import MeteringSettings
from fleet.metering.proxy import MeteringProxy
from fleet.sandbox.egress.doors import DoorSet, fixed
from fleet.watchdog.heartbeat import HeartbeatServer
from tests.fakes.provider.server import FAKE_KEY, FakeProvider

pytestmark = pytest.mark.integration

IDLE = 0.5  # seconds the servers under test give a new connection's first request
BODY = json.dumps(
    {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
).encode()
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
MakeRig = Callable[..., Awaitable["Rig"]]


@dataclass
class Rig:
    proxy: MeteringProxy
    fake: FakeProvider
    http: aiohttp.ClientSession

    def path(self, agent: str) -> str:
        url = self.proxy.urls_for(agent)["anthropic"]
        return url.split(str(self.proxy.port), 1)[1] + "/v1/messages"

    async def ask(self, agent: str) -> int:
        """One whole model request of ``agent``; its status."""
        url = self.proxy.urls_for(agent)["anthropic"] + "/v1/messages"
        async with self.http.post(url, data=BODY, headers={"x-api-key": FAKE_KEY}) as answer:
            await answer.read()
            return answer.status

    async def hold(self, agent: str) -> Conn:
        """A request of ``agent`` whose headers are in and whose body never comes: it
        stays in flight until the connection is closed."""
        conn = await asyncio.open_connection("127.0.0.1", self.proxy.port)
        conn[1].write(
            f"POST {self.path(agent)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n".encode()
        )
        await conn[1].drain()
        return conn


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[MakeRig]:
    made: list[MeteringProxy] = []

    async def sink(*_: object) -> None:
        pass

    async with FakeProvider() as fake, aiohttp.ClientSession() as http:

        async def make(max_connections: int = 1024, max_requests_per_agent: int = 64) -> Rig:
            route = ProviderRoute("anthropic", fake.base_url, ProviderApi.ANTHROPIC)
            settings = MeteringSettings(
                flush_interval=0.05,
                idle_timeout=IDLE,
                max_connections=max_connections,
                max_requests_per_agent=max_requests_per_agent,
            )
            proxy = MeteringProxy(
                tmp_path / f"proxy{len(made)}",
                routes={"anthropic": route},
                sink=sink,
                settings=settings,
            )
            await proxy.start()
            made.append(proxy)
            return Rig(proxy, fake, http)

        try:
            yield make
        finally:
            for proxy in made:
                await proxy.stop()


async def closed_within(conn: Conn, seconds: float) -> bytes | None:
    """What the server sent before hanging up, if it hung up within ``seconds``."""
    reader, _ = conn
    seen = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(65536):
                seen += chunk
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return seen


def close(*conns: Conn) -> None:
    for _, writer in conns:
        writer.close()


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_a_silent_connection_is_closed_after_the_idle_deadline(make_rig: MakeRig) -> None:
    """A new connection that sends nothing, or only part of its headers, is closed after
    ``idle_timeout``; one that has had an answer is kept for the next request."""
    rig: Rig = await make_rig()
    silent = await asyncio.open_connection("127.0.0.1", rig.proxy.port)
    partial = await asyncio.open_connection("127.0.0.1", rig.proxy.port)
    partial[1].write(f"POST {rig.path('coder-1')} HTTP/1.1\r\nHost: x\r\n".encode())
    used = await asyncio.open_connection("127.0.0.1", rig.proxy.port)
    used[1].write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        started = time.monotonic()
        assert await closed_within(silent, IDLE + 2.0) == b""
        assert await closed_within(partial, 2.0) == b""
        assert time.monotonic() - started < IDLE + 2.0
        answer = await used[0].readuntil(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 404")
        assert await closed_within(used, IDLE * 3) is None  # kept alive past the deadline
        assert rig.proxy.admission.counts.expired == 2
    finally:
        close(silent, partial, used)


async def test_at_the_cap_the_longest_idle_connection_makes_room(make_rig: MakeRig) -> None:
    """With every slot taken by idle connections, a new connection closes the one idle the
    longest and is served; requests in flight are never cut for it."""
    rig: Rig = await make_rig(max_connections=4)
    busy = await rig.hold("coder-1")
    await until(lambda: rig.proxy.admission.in_flight("coder-1") == 1)
    idle = [await asyncio.open_connection("127.0.0.1", rig.proxy.port) for _ in range(3)]
    await until(lambda: rig.proxy.admission.open == 4)
    try:
        assert await rig.ask("coder-2") == 200
        assert await closed_within(idle[0], 2.0) == b""  # the oldest idle one
        assert rig.proxy.admission.in_flight("coder-1") == 1
        assert await closed_within(busy, 0.2) is None
        assert rig.proxy.admission.counts.evicted >= 1
    finally:
        close(busy, *idle)


async def test_a_full_house_of_busy_connections_is_a_refusal(
    make_rig: MakeRig, caplog: pytest.LogCaptureFixture
) -> None:
    """When every slot holds a request in flight, a new connection gets a 503 in the
    providers' error shape and is closed, with a log line; the server serves again as soon
    as a slot frees."""
    rig: Rig = await make_rig(max_connections=3)
    held = [await rig.hold(f"coder-{i}") for i in range(3)]
    await until(lambda: sum(rig.proxy.admission.in_flight(f"coder-{i}") for i in range(3)) == 3)
    try:
        extra = await asyncio.open_connection("127.0.0.1", rig.proxy.port)
        held.append(extra)
        answer = await closed_within(extra, 2.0)
        assert answer is not None and answer.startswith(b"HTTP/1.1 503")
        assert b'"overloaded_error"' in answer
        assert rig.proxy.admission.counts.refused == 1
        assert "connections open, the most it takes" in caplog.text
        close(held.pop(0))
        await until(lambda: rig.proxy.admission.open < 3)
        assert await rig.ask("coder-9") == 200
    finally:
        close(*held)


async def test_one_agents_requests_at_once_are_capped(make_rig: MakeRig) -> None:
    """An agent past its cap of requests in flight gets a 503 in its provider's shape,
    naming the cap; another agent's requests pass meanwhile, and the first gets through
    again once one of its own ends."""
    rig: Rig = await make_rig(max_requests_per_agent=3)
    held = [await rig.hold("flooder") for _ in range(3)]
    await until(lambda: rig.proxy.admission.in_flight("flooder") == 3)
    try:
        url = rig.proxy.urls_for("flooder")["anthropic"] + "/v1/messages"
        async with rig.http.post(url, data=BODY) as answer:
            assert answer.status == 503
            error = (await answer.json())["error"]
            assert error["type"] == "overloaded_error"
            assert "3 requests in flight" in error["message"]
        assert await rig.ask("coder-1") == 200
        close(held.pop())
        await until(lambda: rig.proxy.admission.in_flight("flooder") == 2)
        assert await rig.ask("flooder") == 200
    finally:
        close(*held)


async def test_the_heartbeat_endpoint_closes_silent_connections(tmp_path: Path) -> None:
    """The heartbeat endpoint gives a new connection the same short deadline, and beats
    on other connections go on meanwhile."""
    seen: list[str] = []

    async def on_beat(agent: str, kind: str) -> None:
        seen.append(agent)

    server = HeartbeatServer(tmp_path / "hb", on_beat, idle_timeout=IDLE)
    await server.start()
    silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
    try:
        token = server.token_for("coder-1")
        url, headers = server.url_for("coder-1"), {TOKEN_HEADER: token}
        async with aiohttp.ClientSession() as http, http.post(url, headers=headers) as answer:
            assert answer.status == 204
        for conn in silent:
            assert await closed_within(conn, IDLE + 2.0) == b""
        assert server.admission.counts.expired == 20
        assert seen == ["coder-1"]
    finally:
        close(*silent)
        await server.stop()


async def echoes_soon(path: str, conns: list[Conn], seconds: float = 5.0) -> bool:
    """Whether a new connection through the door at ``path`` echoes within ``seconds``
    (a refused one is retried); the one that did is added to ``conns``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn = await asyncio.open_unix_connection(path)
        conns.append(conn)
        conn[1].write(b"late")
        try:
            if await asyncio.wait_for(conn[0].readexactly(4), 1) == b"late":
                return True
        except (asyncio.IncompleteReadError, ConnectionError):
            close(conns.pop())
            await asyncio.sleep(0.02)
    return False


async def test_a_door_past_its_cap_closes_new_connections_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A locked agent's door holds ``max_open`` connections: one more is closed at once,
    with a log line, while those open keep piping; when one ends, a new one gets in."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(100):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    doors = DoorSet(tmp_path / "doors", max_open=3)
    await doors.open("tcp.sock", fixed(server.sockets[0].getsockname()[1]))
    path = str(tmp_path / "doors" / "tcp.sock")
    conns: list[Conn] = []
    try:
        for _ in range(3):
            conns.append(await asyncio.open_unix_connection(path))
            conns[-1][1].write(b"ping")
            assert await asyncio.wait_for(conns[-1][0].readexactly(4), 5) == b"ping"
        conns.append(await asyncio.open_unix_connection(path))
        assert await closed_within(conns[-1], 2.0) == b""
        assert "the most one door takes" in caplog.text
        conns[0][1].write(b"pong")
        assert await asyncio.wait_for(conns[0][0].readexactly(4), 5) == b"pong"
        close(conns.pop(0), conns.pop())
        assert await echoes_soon(path, conns)  # once the door has seen the first go
    finally:
        close(*conns)
        await doors.close_all()
        server.close()
        await server.wait_closed()
