"""The allow-list's forward proxy, served on a locked agent's egress door.

Inside the sandbox the agent's ``HTTPS_PROXY``/``HTTP_PROXY`` point at ``127.0.0.1:3128``,
which the forwarder pipes to the agent's egress door; Fleetwarden answers there with a
:class:`ForwardProxy` of that agent's allow-list, so every refusal is the agent's own.
Each connection carries one request, read by h11 (request line and headers capped at
:data:`MAX_HEAD` bytes, within :data:`HEAD_TIMEOUT` seconds; malformed framing such as
both ``Content-Length`` and ``Transfer-Encoding`` is refused by h11):

* ``CONNECT host:443`` — the one tunnel of the connection;
* ``METHOD http://host[:80|443]/path`` — sent on in origin form with ``Connection:
  close`` and the hop-by-hop headers dropped; the answer is piped back and the
  connection ends. An ``Upgrade`` (websockets) is refused.

Before connecting, :mod:`fleet.destinations` decides: the name exactly on the
list, the port one the method may use, and every resolved address public. The proxy then
connects to an address it checked — there is no second resolution, so a name cannot
resolve to a public address for the check and to loopback for the connection.
Everything refused is answered ``403`` with the reason and reported to ``on_refusal``; an
agent holding more than :data:`MAX_CONNECTIONS` connections open gets ``503``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from fleet.destinations import address_problem, port_problem, resolved_problem
from fleet.sandbox.egress.doors import pipe

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
HEAD_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0
BODY_IDLE_TIMEOUT = 60.0
MAX_CONNECTIONS = 64
"""Connections one agent may hold open through its egress door at once; more get 503."""
_CHUNK = 64 * 1024
# Headers for one hop only, never sent on (RFC 9110 §7.6.1), plus those the proxy sets.
_DROPPED = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"upgrade",
        b"host",
        b"expect",
    }
)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""A name and port → the addresses to try, in order."""


async def system_resolve(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host`` (each once, in its order)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused egress attempt of an agent."""

    agent: str
    host: str  # or, from the metering proxy, the request it refused
    port: int | None
    why: str
    source: str = "egress"  # 'egress': the forward proxy; 'proxy': the metering proxy


class Refused(Exception):
    """What the proxy answers instead of connecting: a status and the reason."""

    def __init__(self, status: int, why: str, *, host: str = "", port: int | None = None):
        super().__init__(why)
        self.status, self.why, self.host, self.port = status, why, host, port


class ForwardProxy:
    """One agent's allow-list as a forward proxy; :meth:`serve` answers one connection."""

    def __init__(
        self,
        agent: str,
        allow: Iterable[str],
        on_refusal: Callable[[Refusal], None],
        *,
        resolve: Resolver = system_resolve,
        check_address: Callable[[str], str | None] = address_problem,
    ) -> None:
        self.agent = agent
        self._allow = frozenset(allow)
        self._on_refusal = on_refusal
        self._resolve = resolve
        self._check_address = check_address
        self._open = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._open += 1
        try:
            if self._open > MAX_CONNECTIONS:
                raise Refused(503, f"more than {MAX_CONNECTIONS} connections open at once")
            try:
                request = await asyncio.wait_for(_next(conn, reader), HEAD_TIMEOUT)
            except TimeoutError:
                raise Refused(408, "no complete request line and headers in time") from None
            if not isinstance(request, h11.Request):
                return  # the agent hung up before asking anything
            if request.method == b"CONNECT":
                await self._tunnel(conn, request, reader, writer)
            else:
                await self._forward(conn, request, reader, writer)
        except h11.RemoteProtocolError as exc:
            await _answer(writer, exc.error_status_hint, f"malformed request: {exc}")
        except Refused as exc:
            if exc.status == 403:
                self._on_refusal(Refusal(self.agent, exc.host, exc.port, exc.why))
            where = f"{exc.host}:{exc.port} " if exc.host else ""
            await _answer(writer, exc.status, f"Fleetwarden egress: {where}refused: {exc.why}")
        finally:
            self._open -= 1
            writer.close()

    # -- the two kinds of request ------------------------------------------------------

    async def _tunnel(
        self,
        conn: h11.Connection,
        request: h11.Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        host, _, port_text = request.target.decode("ascii", "replace").rpartition(":")
        host, port = host.lower(), _port(port_text)
        up_reader, up_writer = await self._connect("CONNECT", host, port)
        try:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            early = conn.trailing_data[0]  # what the client sent after its request
            if early:
                up_writer.write(early)
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def _forward(
        self,
        conn: h11.Connection,
        request: h11.Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        target = request.target.decode("ascii", "replace")
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            raise Refused(
                400,
                "send absolute http:// URLs to this proxy, and HTTPS through CONNECT "
                f"(got {target[:80]!r})",
            )
        if parts.username is not None or parts.password is not None:
            raise Refused(400, "a URL with a user name or password is not forwarded")
        try:
            port = parts.port or 80
        except ValueError:
            raise Refused(400, f"bad port in {target[:80]!r}") from None
        names = [name for name, _ in request.headers]
        if b"content-length" in names and b"transfer-encoding" in names:
            raise Refused(400, "both Content-Length and Transfer-Encoding: send one")
        if b"upgrade" in names:
            why = "protocol upgrades (websockets) are not forwarded"
            raise Refused(403, why, host=parts.hostname, port=port)
        up_reader, up_writer = await self._connect(request.method.decode(), parts.hostname, port)
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            authority = parts.hostname if port == 80 else f"{parts.hostname}:{port}"
            headers = [(n, v) for n, v in request.headers if n not in _DROPPED]
            headers += [(b"host", authority.encode()), (b"connection", b"close")]
            up = h11.Connection(h11.CLIENT)
            up_writer.write(
                up.send(h11.Request(method=request.method, target=path.encode(), headers=headers))
                or b""
            )
            if conn.they_are_waiting_for_100_continue:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await self._body(conn, up, reader, up_writer)
            await pipe(up_reader, writer)
        finally:
            up_writer.close()

    async def _body(
        self,
        conn: h11.Connection,
        up: h11.Connection,
        reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        """The request's body, re-framed by h11 for the upstream."""
        while True:
            event = await asyncio.wait_for(_next(conn, reader), BODY_IDLE_TIMEOUT)
            if isinstance(event, h11.Data):
                up_writer.write(up.send(h11.Data(data=event.data)) or b"")
                await up_writer.drain()
            elif isinstance(event, h11.EndOfMessage):
                up_writer.write(up.send(h11.EndOfMessage()) or b"")
                await up_writer.drain()
                return
            else:
                raise Refused(400, "the request's body ended early")

    # -- the decision and the connection -------------------------------------------------

    async def _connect(
        self, method: str, host: str, port: int | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Check ``host:port`` and connect to one of the addresses checked."""
        if host not in self._allow:
            raise Refused(403, "not on the agent's allow-list", host=host, port=port)
        if port is None:
            raise Refused(400, "no port in the CONNECT target", host=host)
        why = port_problem(method, port)
        if why is not None:
            raise Refused(403, why, host=host, port=port)
        try:
            addresses = await asyncio.wait_for(self._resolve(host, port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise Refused(502, f"could not resolve it: {exc}", host=host, port=port) from exc
        why = resolved_problem(addresses, self._check_address)
        if why is not None:
            raise Refused(403, why, host=host, port=port)
        failure = "no address"
        for address in addresses:
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(address, port), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError) as exc:
                failure = f"{address}: {exc or 'timed out'}"
        raise Refused(502, f"could not connect ({failure})", host=host, port=port)


async def _next(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
    """h11's next event, reading as it needs (a hang-up is the end of the stream)."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(_CHUNK))


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


async def _answer(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    body = (text.replace("\r", " ").replace("\n", " ") + "\n").encode("utf-8", "replace")
    reason = _REASONS.get(status, "Bad Gateway")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    try:
        writer.write(head.encode() + body)
        await writer.drain()
    except (ConnectionError, OSError):
        pass
