"""The MCP door: where an agent reaches the MCP servers it may use, on the heartbeat
endpoint, each at ``/mcp/<agent>/<server>``, over MCP's streamable HTTP transport, with its
own token (``X-Fleetwarden-Token: T`` or ``Authorization: Bearer T``). The server's
credential stays on this side: the door reaches the server itself
(:mod:`fleet.mcp.upstream.connect`) and relays each message (:mod:`fleet.mcp.door.session`)::

    POST   /mcp/<agent>/<server>   one JSON-RPC message
           initialize (no Mcp-Session-Id)  → its answer, with the new session's Mcp-Session-Id
           a request                → its answer: text/event-stream when the agent accepts
                                      it (the server's progress first), else application/json
           a notification           → 202
           an answer                → 400: the door answers a server's requests itself
    GET    /mcp/<agent>/<server>   the server's other messages, as an event stream (a new
                                   GET takes over from the one before, which ends)
    DELETE /mcp/<agent>/<server>   ends the session (and its stdio server's process)

    401  a wrong or missing token;  404  no such server for this agent (the same words
    whether it exists or not), or no such session (initialize again)
    400  not one JSON-RPC message, or no session;  408/413  a body too slow or over 1 MiB
    429  over the agent's requests at once at the door, or an initialize over the sessions
         it may open with the server a minute (:mod:`fleet.mcp.door.rules.limits`)
    502  the server could not be reached or started

**Why aiohttp, not the SDK's server side.** The SDK's streamable HTTP server
(``StreamableHTTPSessionManager``) serves an MCP ``Server`` object's handlers on Starlette,
not a relay of raw messages, and would be a second HTTP server on a port of its own: with
its own token check, outside the endpoint's connection caps and per-agent admission, its
"starting" answer, and the SSH hosts' heartbeat forward. The door needs only the
transport's framing (a POST answered as JSON or an event stream, the session header, GET,
DELETE), which is small; the messages themselves are read and written with the SDK's
types, and the servers are reached with the SDK's client transports.
"""

from __future__ import annotations

import asyncio
import logging
import secrets as random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, TextIO

from aiohttp import web
from mcp_types.version import KNOWN_PROTOCOL_VERSIONS

from fleet.capped_body import OverCap, read_capped
from fleet.connections.loopback import AgentSecrets
from fleet.mcp.door.rules.limits import OPENS_SECONDS, DoorLimits, SessionGrounds
from fleet.mcp.door.rules.opens import Opens, OverOpens
from fleet.mcp.door.session import Session, SessionEnded
from fleet.mcp.door.wire import framing
from fleet.mcp.door.wire.exchange import Answer, Exchange
from fleet.mcp.door.wire.outgoing import Outgoing
from fleet.mcp.hooks import McpHooks, Outcome
from fleet.mcp.model import McpGrant, McpServer
from fleet.mcp.upstream.credentials import Scrub, secrets_of
from fleet.mcp.wire import (
    INVALID_REQUEST,
    MAX_MESSAGE,
    BadMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    dump,
    error,
    parse,
)
from fleet.redaction.redactor import Redactor

log = logging.getLogger(__name__)

SESSION_HEADER: Final = "Mcp-Session-Id"
VERSION_HEADER: Final = "MCP-Protocol-Version"
NO_SERVER: Final = "no MCP server of that name for this agent"
ANSWERED: Final = (
    "the MCP door answers a server's requests of the client itself: an agent's answer is "
    "not relayed"
)
WHOLE_SECONDS: Final = 1.0
"""Seconds a request answered as an event stream waits for its answer to come first: an
answer that does, and an agent that also takes JSON, is answered in one JSON body (the
agent's client reads it whole and keeps its connection: no event stream, no new
connection for the next call). Past it, or once the server sends something else first,
the event stream starts (its headers sent, so the agent's client waits on)."""


Found = tuple[str, McpServer, McpGrant]
"""The agent a request is from (its token checked), the server it asks for, its grant."""
Route = Callable[[web.Request, Found], Awaitable[web.StreamResponse]]


class McpRoster(Protocol):
    """Where the door reads the servers and the agents' grants, as the config is now."""

    def server(self, name: str) -> McpServer | None: ...

    def grant(self, agent: str, server: str) -> McpGrant | None: ...


@dataclass(frozen=True, slots=True)
class StaticRoster:
    """A roster of fixed ``servers`` (by name) and ``grants`` (agent → server → grant)."""

    servers: Mapping[str, McpServer]
    grants: Mapping[str, Mapping[str, McpGrant]]

    @classmethod
    def of(
        cls, servers: Iterable[McpServer], grants: Mapping[str, Iterable[McpGrant]]
    ) -> StaticRoster:
        return cls(
            {s.name: s for s in servers},
            {agent: {g.server: g for g in held} for agent, held in grants.items()},
        )

    def server(self, name: str) -> McpServer | None:
        return self.servers.get(name)

    def grant(self, agent: str, server: str) -> McpGrant | None:
        return self.grants.get(agent, {}).get(server)


class McpDoor:
    """The ``/mcp`` routes (:meth:`mount`). ``environ``: where the servers' credentials
    are read, when a session reaches its server; ``redactor``: the app's redactor — whole
    for the servers' errors' words and the audit, its known values for every message
    relayed to an agent (the server's own credentials are taken out whatever it is);
    ``errlog``:
    where stdio servers' standard error goes (nowhere by default); ``limits``: the caps on
    each agent (:class:`~fleet.mcp.door.rules.limits.DoorLimits`)."""

    def __init__(
        self,
        roster: McpRoster,
        *,
        environ: Mapping[str, str],
        hooks: McpHooks | None = None,
        redactor: Redactor | None = None,
        errlog: TextIO | None = None,
        limits: DoorLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._roster = roster
        self._grounds = SessionGrounds(environ, hooks or McpHooks(), errlog, clock)
        self._redactor = redactor
        self._limits = limits = limits or DoorLimits()
        self._in_flight: dict[str, int] = {}
        self._opens = Opens(limits.opens, OPENS_SECONDS, clock)
        self._secrets: AgentSecrets | None = None
        self._sessions: dict[str, Session] = {}
        self._opening: dict[tuple[str, str], asyncio.Lock] = {}
        self._stopped = False

    def mount(self, app: web.Application, secrets: AgentSecrets) -> None:
        """Add the routes to ``app``, tokens checked against ``secrets``; the sessions end
        when ``app`` shuts down."""
        self._secrets = secrets
        route = "/mcp/{agent}/{server}"
        app.router.add_post(route, self._counted(self._post))
        app.router.add_get(route, self._counted(self._get))
        app.router.add_delete(route, self._counted(self._delete))
        app.on_shutdown.append(self._on_shutdown)

    def sessions(self, agent: str | None = None) -> list[Session]:
        """The sessions open now (``agent``'s only, when given)."""
        return [s for s in self._sessions.values() if agent is None or s.agent == agent]

    def in_flight(self, agent: str) -> int:
        """``agent``'s requests at the door now."""
        return self._in_flight.get(agent, 0)

    async def end_agent(self, agent: str) -> None:
        """End every session of ``agent`` (its run ended): their servers' processes too."""
        await self._close([s for s in self._sessions.values() if s.agent == agent])

    async def stop(self) -> None:
        """End every session; the door answers no more."""
        self._stopped = True
        await self._close(list(self._sessions.values()))

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.stop()

    async def _close(self, sessions: list[Session]) -> None:
        for session in sessions:
            self._sessions.pop(session.id, None)
        await asyncio.gather(*(session.close() for session in sessions))

    # -- routes --------------------------------------------------------------------------

    def _counted(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``route`` within the agent's cap of requests at once (its token checked first)."""

        async def counted(request: web.Request) -> web.StreamResponse:
            found = self._found(request)
            if isinstance(found, web.StreamResponse):
                return found
            agent = found[0]
            if self._in_flight.get(agent, 0) >= self._limits.max_in_flight:
                why = f"over {self._limits.max_in_flight} MCP requests at once: wait for one to end"
                return framing.refused(None, why, 429)
            self._in_flight[agent] = self._in_flight.get(agent, 0) + 1
            try:
                return await route(request, found)
            finally:
                self._in_flight[agent] -= 1
                if not self._in_flight[agent]:
                    del self._in_flight[agent]

        return counted

    async def _post(self, request: web.Request, found: Found) -> web.StreamResponse:
        agent, server, grant = found
        try:
            body = await read_capped(request, MAX_MESSAGE, within=self._limits.body_seconds)
        except TimeoutError:
            return web.Response(status=408, text="the message came too slowly\n")
        except OverCap:
            return framing.refused(None, f"a message over {MAX_MESSAGE} bytes is not taken", 413)
        try:
            message = parse(body)
        except BadMessage as exc:
            return framing.refused(None, f"{exc}", 400, exc.code)
        given = request.headers.get(SESSION_HEADER)
        if isinstance(message, JSONRPCRequest) and message.method == "initialize":
            if given:
                why = "initialize opens a new session: send it without Mcp-Session-Id"
                return framing.refused(message.id, why, 400)
            return await self._initialize(agent, server, grant, message, len(body))
        session = self._session(given, agent, server)
        if isinstance(session, web.StreamResponse):
            return session
        version = request.headers.get(VERSION_HEADER)
        if version is not None and version not in KNOWN_PROTOCOL_VERSIONS:
            rid = message.id if isinstance(message, JSONRPCRequest) else None
            return framing.refused(rid, f"unsupported {VERSION_HEADER}: {version[:40]!r}", 400)
        if isinstance(message, JSONRPCRequest):
            exchange = await session.request(
                message,
                len(body),
                streamed=framing.streams(request),
                gone=lambda: framing.gone(request),
            )
            return await self._answer(request, exchange)
        if isinstance(message, JSONRPCNotification):
            refused = await session.notify(message)
            return (
                web.Response(status=202) if refused is None else framing.refused(None, refused, 400)
            )
        return framing.refused(None, ANSWERED, 400)

    async def _initialize(
        self,
        agent: str,
        server: McpServer,
        grant: McpGrant,
        message: JSONRPCRequest,
        size: int,
    ) -> web.StreamResponse:
        if self._stopped:
            return web.Response(status=503, text="Fleetwarden is stopping\n")
        try:
            session = await self._open(agent, server, grant)
        except OverOpens as exc:
            return framing.refused(message.id, f"{exc}", 429)
        except SessionEnded as exc:
            return framing.refused(message.id, f"{exc}", 502)
        exchange = await session.request(message, size, streamed=False)
        answer = await exchange.ended()
        if answer.outcome is not Outcome.OK or answer.message is None:
            await self._close([session])
            body = answer.message or dump(error(message.id, INVALID_REQUEST, answer.why))
            failed = answer.outcome in (Outcome.FAILED, Outcome.TIMEOUT)
            return web.Response(body=body, status=502 if failed else 200, content_type=framing.JSON)
        return framing.json_answer(answer.message, {SESSION_HEADER: session.id})

    async def _open(self, agent: str, server: McpServer, grant: McpGrant) -> Session:
        # One open at a time per agent and server, so the cap holds against opens at once.
        lock = self._opening.setdefault((agent, server.name), asyncio.Lock())
        async with lock:
            return await self._opened(agent, server, grant)

    async def _opened(self, agent: str, server: McpServer, grant: McpGrant) -> Session:
        if not self._opens.take(agent, server.name):
            raise OverOpens(self._opens.words(server.name))
        held = [s for s in self._sessions.values() if s.agent == agent and s.server == server]
        ended = [s for s in held if s.ended]
        live = [s for s in held if not s.ended]
        if len(live) >= self._limits.max_sessions:
            ended.append(min(live, key=lambda s: s.last_used))
        await self._close(ended)
        if self._stopped:
            raise SessionEnded("Fleetwarden is stopping")
        scrub = Scrub(secrets_of([server], self._grounds.environ))
        outer = None if self._redactor is None else self._redactor.redact
        known = None if self._redactor is None else self._redactor.held
        session = Session(
            random.token_urlsafe(24),
            agent,
            server,
            lambda: self._roster.grant(agent, server.name),  # read live: a reload applies
            self._grounds,
            scrub=Outgoing(scrub, known),
            redact=scrub if outer is None else (lambda text: outer(scrub(text))),
        )
        self._sessions[session.id] = session
        try:
            await session.open()
        except BaseException:
            await self._close([session])
            raise
        return session

    async def _get(self, request: web.Request, found: Found) -> web.StreamResponse:
        agent, server, _ = found
        session = self._session(request.headers.get(SESSION_HEADER), agent, server)
        if isinstance(session, web.StreamResponse):
            return session
        if not framing.streams(request):
            return web.Response(status=406, text="GET answers text/event-stream only\n")
        return await framing.event_stream(request, session.listen())

    async def _delete(self, request: web.Request, found: Found) -> web.StreamResponse:
        agent, server, _ = found
        session = self._session(request.headers.get(SESSION_HEADER), agent, server)
        if isinstance(session, web.StreamResponse):
            return session
        await self._close([session])
        return web.Response(status=204)

    # -- checks --------------------------------------------------------------------------

    def _found(self, request: web.Request) -> Found | web.Response:
        """The agent (its token checked), the server and its grant; or the refusal."""
        secrets = self._secrets
        agent = (
            None
            if secrets is None
            else secrets.matches(request.match_info["agent"], framing.token_of(request))
        )
        if agent is None:
            return web.json_response({"error": "a wrong or missing token"}, status=401)
        name = request.match_info["server"]
        grant = self._roster.grant(agent, name)
        server = self._roster.server(name) if grant is not None else None
        if grant is None or server is None:
            return web.json_response({"error": NO_SERVER}, status=404)
        return agent, server, grant

    def _session(self, given: str | None, agent: str, server: McpServer) -> Session | web.Response:
        if not given:
            return framing.refused(None, f"no {SESSION_HEADER}: initialize first", 400)
        session = self._sessions.get(given)
        if session is None or session.agent != agent or session.server != server or session.ended:
            return framing.refused(None, "no such session (it ended): initialize again", 404)
        return session

    async def _answer(self, request: web.Request, exchange: Exchange) -> web.StreamResponse:
        answer: Answer | None = None
        if exchange.streamed and framing.takes_json(request):
            answer = await exchange.first(WHOLE_SECONDS)
        if exchange.streamed and answer is None:
            return await framing.event_stream(request, exchange.messages())
        if answer is None:
            answer = await exchange.ended()
        if answer.message is None:
            return web.Response(status=202)
        return framing.json_answer(answer.message)
