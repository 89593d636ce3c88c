"""The allow-list's forward proxy on a real socket, against real servers on 127.0.0.1: names
off the list, look-alikes, IP literals, ports other than 80/443, and names that resolve to
loopback are refused and reported; an allowed name is connected to at the address that was
checked, without a second resolution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fleet.destinations import address_problem, name_problem
from fleet.sandbox.egress.egress_proxy import MAX_CONNECTIONS, ForwardProxy, Refusal

DEADLINE = 5.0


async def _origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    body = b"origin saw " + head.split(b"\r\n", 1)[0]
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    writer.close()


@pytest.fixture
async def origin() -> AsyncIterator[int]:
    """A plain HTTP server on 127.0.0.1 that echoes the request line it got."""
    server = await asyncio.start_server(_origin, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


class Rig:
    def __init__(self, proxy: ForwardProxy, port: int) -> None:
        self.proxy, self.port = proxy, port
        self.refused: list[Refusal] = []
        self.lookups: list[str] = []

    async def ask(self, raw: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(raw)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), DEADLINE)
        finally:
            writer.close()


@pytest.fixture
async def egress_proxy_rig(origin: int) -> AsyncIterator[Rig]:
    """A proxy allowing pkg.example (resolved to 127.0.0.1 by an injected resolver), and
    localhost (resolved by the system); loopback is allowed only for the injected name's
    sake when ``permit_loopback`` is set on the rig."""
    holder: list[Rig] = []

    async def resolve(host: str, port: int) -> list[str]:
        holder[0].lookups.append(host)
        if host == "pkg.example":
            return ["127.0.0.1"]
        infos = await asyncio.get_running_loop().getaddrinfo(host, port)
        return [str(info[4][0]) for info in infos]

    def check(address: str) -> str | None:
        return None if getattr(holder[0], "permit", False) else address_problem(address)

    proxy = ForwardProxy(
        "coder",
        ("pkg.example", "localhost", "github.com"),
        lambda r: holder[0].refused.append(r),
        resolve=resolve,
        check_address=check,
    )
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    holder.append(Rig(proxy, server.sockets[0].getsockname()[1]))
    try:
        yield holder[0]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_name_that_resolves_to_loopback_is_refused_at_any_port(
    egress_proxy_rig: Rig, origin: int
) -> None:
    """An allowed name resolving to 127.0.0.1 (`localhost`, or a public-looking name behind
    a resolver) reaches no port of the host: CONNECT or plain HTTP."""
    for raw in (
        b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n",
        b"GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"CONNECT pkg.example:443 HTTP/1.1\r\nHost: pkg.example\r\n\r\n",
        f"GET http://pkg.example:{origin}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    ):
        answer = await egress_proxy_rig.ask(raw)
        assert answer.startswith(b"HTTP/1.1 403"), answer
        assert b"origin saw" not in answer
    whys = [r.why for r in egress_proxy_rig.refused]
    assert "loopback" in whys[0] and "loopback" in whys[2], whys
    assert "not " + str(origin) in whys[3] or str(origin) in whys[3], whys
    assert all(r.agent == "coder" for r in egress_proxy_rig.refused)


async def test_look_alikes_ip_literals_and_other_ports_are_refused(egress_proxy_rig: Rig) -> None:
    """Only the exact listed name passes: `github.com.evil.example`, `githuB.com.` and an IP
    literal are off the list; CONNECT goes only to 443, plain HTTP only to 80 and 443."""
    cases = {
        b"CONNECT github.com.evil.example:443 HTTP/1.1\r\nHost: a\r\n\r\n": "allow-list",
        b"CONNECT githuB.com.:443 HTTP/1.1\r\nHost: a\r\n\r\n": "allow-list",
        b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: a\r\n\r\n": "allow-list",
        b"GET http://[::1]/ HTTP/1.1\r\nHost: a\r\n\r\n": "allow-list",
        b"CONNECT github.com:22 HTTP/1.1\r\nHost: a\r\n\r\n": "only to port 443",
        b"GET http://github.com:8080/ HTTP/1.1\r\nHost: a\r\n\r\n": "ports 80 and 443",
    }
    for raw, why in cases.items():
        answer = await egress_proxy_rig.ask(raw)
        assert answer.startswith(b"HTTP/1.1 403") and why.encode() in answer, (raw, answer)
    assert len(egress_proxy_rig.refused) == len(cases)
    assert egress_proxy_rig.lookups == []  # refused before any name was resolved


async def test_an_allowed_name_is_reached_at_the_checked_address_in_origin_form(
    egress_proxy_rig: Rig, origin: int
) -> None:
    """Plain HTTP to a listed name goes out in origin form with `Connection: close`, to the
    address the check saw, resolved once; the port rule still holds when addresses pass."""
    egress_proxy_rig.permit = True  # type: ignore[attr-defined]
    answer = await egress_proxy_rig.ask(
        b"GET http://pkg.example/simple/x?y=1 HTTP/1.1\r\nHost: evil\r\nConnection: keep-alive"
        b"\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 502"), answer  # port 80 on 127.0.0.1: nothing there
    assert egress_proxy_rig.lookups == ["pkg.example"]
    answer = await egress_proxy_rig.ask(
        f"GET http://pkg.example:{origin}/simple/ HTTP/1.1\r\nHost: e\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 403") and b"ports 80 and 443" in answer


async def test_malformed_and_oversized_requests_are_refused_without_connecting(
    egress_proxy_rig: Rig,
) -> None:
    """Both Content-Length and Transfer-Encoding, a head past the cap, a websocket upgrade,
    an origin-form request: answered with an error, nothing resolved."""
    both = (
        b"POST http://github.com/ HTTP/1.1\r\nHost: github.com\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    huge = b"GET http://github.com/ HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n"
    upgrade = b"GET http://github.com/ HTTP/1.1\r\nHost: github.com\r\nUpgrade: websocket\r\n\r\n"
    origin_form = b"GET / HTTP/1.1\r\nHost: github.com\r\n\r\n"
    for raw in (both, huge, upgrade, origin_form):
        answer = await egress_proxy_rig.ask(raw)
        assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 403", b"HTTP/1.1 431")), answer
    assert egress_proxy_rig.lookups == []


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("224.0.0.1", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("::", True),
        ("::ffff:127.0.0.1", True),
        ("64:ff9b::7f00:1", True),
        ("2002:7f00:1::", True),
        ("fe80::1%eth0", True),
        ("fd00::1", True),
        ("8.8.8.8", False),
        ("2606:4700::1", False),
    ],
)
def test_only_public_addresses_may_be_connected_to(address: str, refused: bool) -> None:
    """Loopback, private, link-local, shared, multicast, unspecified and IPv6 forms that
    carry such an IPv4 address are refused; public ones pass."""
    assert (address_problem(address) is not None) is refused


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "2130706433", "0x7f000001", "127.1", "localhost", "a.localhost", "intranet"],
)
def test_the_config_refuses_addresses_and_local_names(host: str) -> None:
    """IP literals in any form the resolver reads, `localhost` and names without a dot are
    no names for an allow-list."""
    assert name_problem(host) is not None
    assert name_problem("registry.npmjs.org") is None


async def test_an_agent_holding_too_many_connections_is_turned_away(egress_proxy_rig: Rig) -> None:
    """Past the cap of open connections, a new one is answered 503 at once; closing the
    idle ones frees the room again."""
    idle = [
        await asyncio.open_connection("127.0.0.1", egress_proxy_rig.port)
        for _ in range(MAX_CONNECTIONS)
    ]
    try:
        async with asyncio.timeout(DEADLINE):
            while egress_proxy_rig.proxy._open < MAX_CONNECTIONS:  # noqa: ASYNC110 - the server accepts
                await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", egress_proxy_rig.port)
        answer = await asyncio.wait_for(reader.read(), DEADLINE)  # answered before it asks
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503"), answer
    finally:
        for _, writer in idle:
            writer.close()
    async with asyncio.timeout(DEADLINE):
        while egress_proxy_rig.proxy._open:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    answer = await egress_proxy_rig.ask(
        b"CONNECT github.com.evil.example:443 HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 403"), answer
