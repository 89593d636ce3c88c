"""Who gets into a server, and for how long: connection caps (in all and per peer), the
deadline for a new connection's first request, and a cap on each agent's requests at once.

The metering proxy and the heartbeat endpoint serve every agent on one port, so one agent
must not be able to take what the others need. :class:`Admission` sits between the
listening socket and aiohttp (its protocol factory wraps each of aiohttp's connection
handlers; aiohttp leaves connection limits to the application) and in front of the
routes (a middleware):

* A new connection must send its first request's headers within ``idle_timeout``
  seconds, or it is closed. Between two requests, a kept-alive connection waits as long
  as the server's header deadline (clients keep idle connections for up to 90 s).
* At most ``max_connections`` at once, a connection counting until both it and the
  request it carried are over (a proxied request goes on reading the provider after the
  agent hangs up). At the cap a new connection closes an idle one — the oldest that never
  sent a request first, else the one idle the longest; only when none is idle is it
  refused: sent ``refusal`` and closed, with a log line a minute at most. A request in
  flight is never cut for another.
* With ``max_per_peer``, at most that many from one peer (see :func:`peer_of`: the local
  user whose socket it is, else an IPv4 address or an IPv6 /64, one machine's share), so
  one client cannot take every place: past it a new connection of that peer closes the
  peer's own oldest idle one, or is refused when none is idle. A connection is counted
  against its peer once it is made (the peer is only known then; a TLS connection, after
  its handshake).
* Requests ``who`` attributes to an agent (after checking its secret): at most
  ``max_per_agent`` in flight per agent; past it ``busy`` answers (a 503), with a log line
  a minute at most per agent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from fleet.connections import socket_owner

log = logging.getLogger(__name__)

LOG_EVERY: Final = 60.0  # seconds between two log lines of one kind
_MAX_NOTED: Final = 1024  # agents remembered for rate-limited log lines

Who = Callable[[web.Request], str | None]
Busy = Callable[[web.Request, str, int], web.StreamResponse]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Counts:
    """What admission did since start (for logs and tests)."""

    refused: int = 0  # connections turned away at the cap
    refused_peer: int = 0  # connections turned away at their peer's cap
    evicted: int = 0  # idle connections closed to make room
    expired: int = 0  # new connections that sent no request in time
    busy: int = 0  # requests refused for their agent's cap


@dataclass(slots=True)
class _Conn:
    requests: int = 0
    busy: int = 0
    open: bool = True
    timer: asyncio.TimerHandle | None = None
    peer: str | None = None  # counted against this peer's cap


@dataclass(slots=True)
class _Notes:
    """Rate-limited warnings: one line per key a minute at most."""

    last: dict[str, float] = field(default_factory=dict)

    def due(self, key: str, now: float) -> bool:
        at = self.last.get(key)
        if at is not None and now - at < LOG_EVERY:
            return False
        if at is None and len(self.last) >= _MAX_NOTED:
            self.last.clear()
        self.last[key] = now
        return True


class Admission:
    """The caps of one loopback server (``what`` names it in log lines)."""

    def __init__(
        self,
        what: str,
        *,
        max_connections: int,
        max_per_agent: int,
        idle_timeout: float,
        refusal: bytes,
        who: Who | None = None,
        busy: Busy | None = None,
        max_per_peer: int | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.max_connections = max_connections
        self.max_per_peer = max_per_peer
        self.max_per_agent = max_per_agent
        self.idle_timeout = idle_timeout
        self.counts = Counts()
        self.refusal = refusal
        self._who = who
        self._busy = busy
        self._now = now
        self._conns: dict[RequestHandler, _Conn] = {}
        # Idle connections, oldest first: those that never sent a request apart, as they
        # make room first (every client sends its request as soon as it connects).
        self._fresh: dict[RequestHandler, None] = {}
        self._idle: dict[RequestHandler, None] = {}
        self._in_flight: dict[str, int] = {}
        self._peers: dict[str, int] = {}  # connections counted against each peer
        self._notes = _Notes()

    @property
    def open(self) -> int:
        """Connections counted against the cap now."""
        return len(self._conns)

    def in_flight(self, agent: str) -> int:
        return self._in_flight.get(agent, 0)

    def from_peer(self, peer: str) -> int:
        """Connections counted against ``peer`` (see :func:`peer_of`) now."""
        return self._peers.get(peer, 0)

    # -- connections -----------------------------------------------------------------

    def factory(self, server: Callable[[], RequestHandler]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory to listen with: ``server``'s handlers (an aiohttp
        :class:`~aiohttp.web.Server`, or what makes handlers of it), within the caps."""

        def make() -> asyncio.Protocol:
            if len(self._conns) >= self.max_connections and not self._evict():
                self.counts.refused += 1
                if self._notes.due("", self._now()):
                    log.warning(
                        "%s: %d connections open, the most it takes; refused %d so far",
                        self.what,
                        len(self._conns),
                        self.counts.refused,
                    )
                return _Refused(self.refusal)
            handler = server()
            # Counted, and evictable, from here: a burst of accepts comes before any of
            # its connections is made.
            loop = asyncio.get_running_loop()
            timer = loop.call_later(self.idle_timeout, self._expire, handler)
            self._conns[handler] = _Conn(timer=timer)
            self._fresh[handler] = None
            return _Tracked(handler, self)

        return make

    def _evict(self, peer: str | None = None) -> bool:
        """Close the connection that never sent a request and is the oldest, else the one
        idle the longest (of ``peer`` only, when given); whether there was one."""
        for pool in (self._fresh, self._idle):
            for handler in pool:
                conn = self._conns.get(handler)
                if peer is not None and (conn is None or conn.peer != peer):
                    continue
                del pool[handler]
                self._forget(handler)
                handler.force_close()
                self.counts.evicted += 1
                return True
        return False

    def kept(self, handler: RequestHandler) -> bool:
        """Whether ``handler``'s connection is still let in (not closed to make room, or
        for its silence, before it was even made)."""
        return handler in self._conns

    def arrived(self, handler: RequestHandler, peer: str | None) -> bool:
        """``handler``'s connection is made, from ``peer``: whether its peer's cap lets it
        in (closing the peer's own oldest idle connection to make room if need be)."""
        conn = self._conns.get(handler)
        if conn is None or peer is None or self.max_per_peer is None:
            return conn is not None
        held = self._peers.get(peer, 0)
        if held >= self.max_per_peer and not self._evict(peer):
            self.counts.refused_peer += 1
            if self._notes.due(f"peer {peer}", self._now()):
                log.warning(
                    "%s: %d connections open from %s, the most one peer may hold; "
                    "refused %d so far",
                    self.what,
                    held,
                    peer,
                    self.counts.refused_peer,
                )
            self._fresh.pop(handler, None)
            self._forget(handler)
            return False
        conn.peer = peer
        self._peers[peer] = self._peers.get(peer, 0) + 1
        return True

    def _expire(self, handler: RequestHandler) -> None:
        conn = self._conns.get(handler)
        if conn is not None and conn.requests == 0:
            self.counts.expired += 1
            self._fresh.pop(handler, None)
            self._forget(handler)
            handler.force_close()

    def _lost(self, handler: RequestHandler) -> None:
        conn = self._conns.get(handler)
        if conn is None:
            return
        conn.open = False
        self._fresh.pop(handler, None)
        self._idle.pop(handler, None)
        if conn.busy == 0:
            self._forget(handler)

    def _forget(self, handler: RequestHandler) -> None:
        conn = self._conns.pop(handler, None)
        if conn is None:
            return
        if conn.timer is not None:
            conn.timer.cancel()
        if conn.peer is not None:
            left = self._peers[conn.peer] - 1
            if left:
                self._peers[conn.peer] = left
            else:
                del self._peers[conn.peer]

    # -- requests --------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks the connection busy while ``handler`` runs, and holds each agent to its
        cap of requests at once."""
        protocol = request.protocol
        conn = self._conns.get(protocol)
        if conn is not None:
            conn.requests += 1
            conn.busy += 1
            self._fresh.pop(protocol, None)
            self._idle.pop(protocol, None)
            if conn.timer is not None:
                conn.timer.cancel()
                conn.timer = None
        try:
            agent = self._who(request) if self._who is not None else None
            if agent is None:
                return await handler(request)
            return await self._counted(agent, request, handler)
        finally:
            if conn is not None:
                conn.busy -= 1
                if conn.busy == 0:
                    if conn.open and protocol in self._conns:
                        self._idle[protocol] = None
                    elif not conn.open:
                        self._forget(protocol)

    async def _counted(
        self, agent: str, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        held = self._in_flight.get(agent, 0)
        if held >= self.max_per_agent and self._busy is not None:
            self.counts.busy += 1
            if self._notes.due(agent, self._now()):
                log.warning(
                    "%s: refused a request of %s: %d in flight, the most one agent may have",
                    self.what,
                    agent,
                    held,
                )
            return self._busy(request, agent, held)
        self._in_flight[agent] = held + 1
        try:
            return await handler(request)
        finally:
            left = self._in_flight[agent] - 1
            if left:
                self._in_flight[agent] = left
            else:
                del self._in_flight[agent]


class _Tracked(asyncio.Protocol):
    """aiohttp's handler for one connection, with admission told when it opens and ends."""

    __slots__ = ("_admission", "_inner", "_made")

    def __init__(self, inner: RequestHandler, admission: Admission) -> None:
        self._inner = inner
        self._admission = admission
        self._made = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._admission.kept(self._inner):
            transport.close()  # it made room for another before it was made
            return
        per_peer = self._admission.max_per_peer is not None
        if not self._admission.arrived(self._inner, peer_of(transport) if per_peer else None):
            _Refused(self._admission.refusal).connection_made(transport)
            return
        self._made = True
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        self._inner.eof_received()
        return None  # close the transport, as aiohttp's handler asks

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            if self._made:
                self._inner.connection_lost(exc)
        finally:
            self._admission._lost(self._inner)


class _Refused(asyncio.Protocol):
    """A connection past the cap: told so, and closed."""

    __slots__ = ("_answer",)

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._answer and isinstance(transport, asyncio.WriteTransport):
            transport.write(self._answer)
        transport.close()


def peer_of(transport: asyncio.BaseTransport) -> str | None:
    """Whose a connection is, for the per-peer cap: from this machine, the local user that
    holds its other end (``uid 1000``; any local user may connect from any of the machine's
    addresses, all of 127.0.0.0/8 included, and an SSH tunnel comes from 127.0.0.1 like
    anyone else, so there an address is no one's); from elsewhere, its IPv4 address, or its
    IPv6 address's /64 (one machine is given a whole /64); ``None`` when it has no IP
    address."""
    name = transport.get_extra_info("peername")
    if not isinstance(name, tuple) or not name:
        return None
    try:
        address = ipaddress.ip_address(str(name[0]).split("%", 1)[0])
    except ValueError:
        return None
    uid = socket_owner.owner(transport.get_extra_info("sockname"), name)
    if uid is not None:
        return f"uid {uid}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def refusal(body: bytes = b"", content_type: str = "application/json") -> bytes:
    """The raw answer for a connection refused at the cap: a 503 that closes."""
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
