"""One agent's MCP session with one server through the door, over a connection of its own.

**One upstream connection per session.** Each session an agent's CLI opens at the door
(its ``initialize``) gets its own connection to the server (a stdio server: its own process
in the agent's sandbox of it, ended with the session). Nothing is shared between agents
(one agent's sessions share only their sandbox's HOME): the server sees one client's
handshake, so every message keeps its ids. The cost is a start per session, within a cap.

**What is relayed.** Each method the door knows (:mod:`fleet.mcp.door.rules.methods`; any other is
refused), but:

* the handshake speaks for the client as the door does, not as the agent would, and the
  server's requests of the client are answered by the door, never relayed
  (:mod:`fleet.mcp.door.rules.handshake`): no agent widens a server's roots or is asked by it;

* ``tools/list``: only the tools the agent may call, as its grant is now;
* a call (a tool's, a resource's read, a prompt's get) is checked first
  (:class:`fleet.mcp.door.rules.gate.Gate`: a tool off the grant refused, its asks, a
  priced server's claim on the run's cap and budgets); one the agent cancels or hangs up
  on while it is asked ends its ask and is never relayed: a late yes can run nothing;
* every request of the agent's has the server's ``timeout``: past it the agent gets an
  error, the server a ``notifications/cancelled``, and a late answer is dropped;
* every message to the agent has every secret Fleetwarden holds scrubbed out
  (:class:`~fleet.mcp.door.wire.outgoing.Outgoing`), and one over
  :data:`fleet.mcp.wire.MAX_MESSAGE` is not relayed (an answer becomes an error saying so);
* an error's words from the server are redacted and cut to one line.

**Its parts.** The session holds the connection (its start, its end) and takes what the
agent sends; the requests it has in flight, each settled once with its bill and its audit,
are kept by :class:`~fleet.mcp.door.in_flight.InFlight`; what the server sends is taken to
where it goes by :class:`~fleet.mcp.door.from_server.FromServer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any, Final

import anyio
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.message import ClientMessageMetadata, SessionMessage

from fleet.mcp.door.from_server import FromServer
from fleet.mcp.door.in_flight import InFlight
from fleet.mcp.door.rules.gate import Gate, Stop
from fleet.mcp.door.rules.handshake import DROPPED, as_sent, roots_of
from fleet.mcp.door.rules.limits import SessionGrounds
from fleet.mcp.door.rules.methods import CALLS, METHOD_NOT_FOUND, refusal, relayed
from fleet.mcp.door.wire.exchange import Answer, Exchange
from fleet.mcp.door.wire.outgoing import Outgoing
from fleet.mcp.door.wire.waiting import Gone, there
from fleet.mcp.hooks import Outcome
from fleet.mcp.model import McpGrant, McpServer
from fleet.mcp.upstream.connect import open_upstream
from fleet.mcp.upstream.credentials import MissingCredential, Scrub
from fleet.mcp.wire import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    REQUEST_TIMEOUT,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    error,
    param,
)
from fleet.redaction.guard import guarded

log = logging.getLogger(__name__)

CLOSE_SECONDS: Final = 10.0
"""Seconds a session's connection has to close (a stdio server to exit, an HTTP server to
take the session's end) before it is cut."""


class Session:
    """``agent``'s session ``id`` with ``server``, as ``grant`` lets it, on what every
    session shares (``grounds``). ``scrub``: what every message to the agent passes;
    ``redact``: the app's redactor, for the words of the server's errors and the audit."""

    def __init__(
        self,
        session_id: str,
        agent: str,
        server: McpServer,
        grant: Callable[[], McpGrant | None],
        grounds: SessionGrounds,
        *,
        scrub: Outgoing | Scrub,
        redact: Callable[[str], str],
    ) -> None:
        self.id = session_id
        self.agent = agent
        self.server = server
        self._environ = grounds.environ
        self._hooks = hooks = grounds.hooks
        self._redact = redact
        self._errlog = grounds.errlog
        self._clock = clock = grounds.clock
        self.last_used = clock()
        self._gate = gate = Gate(agent, server, grant, hooks)
        self._flight = InFlight(
            agent, server, gate, hooks, scrub=scrub, redact=redact, clock=clock, spawn=self._spawn
        )
        self._roots = roots = roots_of(server)
        self._from_server = FromServer(
            agent,
            server,
            self._flight,
            gate.allows,
            roots=roots,
            reply=self._reply,
            scrub=scrub,
            redact=redact,
        )
        self._write: Any = None
        self._ready = asyncio.Event()
        self._ended = asyncio.Event()
        self._why = f"the MCP server {server.name} ended the session"
        self._scope: anyio.CancelScope | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    # -- lifecycle --------------------------------------------------------------------

    async def open(self) -> None:
        """Connect to the server (start its process); :class:`SessionEnded` with the words
        for the agent when it cannot be."""
        self._task = asyncio.create_task(self._run(), name=f"mcp {self.agent} {self.server.name}")
        ready = asyncio.ensure_future(self._ready.wait())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({ready, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            ended.cancel()
        if self._ended.is_set():
            raise SessionEnded(self._why)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def close(self) -> None:
        """End the session: its connection closed (its process ended), every request still
        waiting answered that the session ended."""
        self._closing = True
        if self._scope is not None:
            self._scope.cancel()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), CLOSE_SECONDS)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._end(f"the MCP session with {self.server.name} was closed")
        if self._tasks:  # the audits of its last calls are told, within a bound
            _, late = await asyncio.wait(set(self._tasks), timeout=CLOSE_SECONDS)
            for unfinished in late:
                unfinished.cancel()

    async def _run(self) -> None:
        try:
            confine = self._hooks.confine(self.agent, self.server)
            async with open_upstream(self.server, self._environ, self._errlog, confine) as streams:
                read, self._write = streams
                self._ready.set()
                with anyio.CancelScope() as scope:
                    self._scope = scope
                    if self._closing:
                        scope.cancel()
                    async for item in read:
                        if isinstance(item, Exception):
                            log.warning(
                                "MCP server %s sent %s a message that is not JSON-RPC: %s",
                                self.server.name,
                                self.agent,
                                guarded(f"{item}", self._redact),
                            )
                            continue
                        self._from_server.take(item.message)
        except MissingCredential as exc:
            log.error("MCP server %s cannot be reached: %s", self.server.name, exc)
            self._why = f"the credential for MCP server {self.server.name} is missing or refused"
        except Exception as exc:
            log.warning(
                "MCP server %s failed for %s: %s",
                self.server.name,
                self.agent,
                guarded(_words(exc), self._redact),
            )
            self._why = f"the MCP server {self.server.name} could not be reached"
        finally:
            self._write = None
            self._end(self._why)

    def _end(self, why: str) -> None:
        if self._ended.is_set():
            return
        self._ended.set()
        self._from_server.end()
        self._flight.end_all(why)

    # -- from the agent ---------------------------------------------------------------

    async def request(
        self, message: JSONRPCRequest, size: int, *, streamed: bool, gone: Gone | None = None
    ) -> Exchange:
        """Relay the agent's request ``message`` (``size`` bytes as posted) as the door
        relays it (:func:`fleet.mcp.door.rules.methods.relayed`); the exchange its answer comes on
        (already ended when the door answers it itself). ``gone``: whether the agent has
        hung up, looked at while a call is asked and before it is relayed."""
        self.last_used = now = self._clock()
        exchange = Exchange(relayed(as_sent(message, self._roots)), now, size, streamed)
        if self._flight.taken(message.id):
            why = f"a request with id {message.id!r} may still be answered: use another id"
            return self._refuse(exchange, INVALID_REQUEST, why, Outcome.REFUSED)
        self._flight.begin(exchange)
        refused = refusal(message)
        if refused is not None:
            code = INVALID_PARAMS if message.method in CALLS else METHOD_NOT_FOUND
            return self._refuse(exchange, code, refused, Outcome.REFUSED)
        claim: object = None
        if exchange.audited:
            try:
                stop = await self._gate.decide(exchange, gone or there)
            except asyncio.CancelledError:
                self._flight.forget(exchange)
                raise
            if stop is None and exchange.withdrawn:
                stop = Stop(Outcome.CANCELLED, "cancelled by the agent")
            if stop is None and not self.ended:
                claim = self._gate.claim()
            if isinstance(claim, Stop):
                stop, claim = claim, None
            if stop is not None:
                return self._stopped(exchange, stop)
            exchange.started = self._clock()  # its time is the server's, not the ask's
        if self.ended:
            return self._refuse(exchange, INVALID_REQUEST, self._why, Outcome.FAILED)
        self._flight.sent(exchange, claim)
        timeout = self.server.timeout
        exchange.timer = asyncio.get_running_loop().call_later(timeout, self._expire, exchange)
        if not await self._send(exchange.request):
            self._flight.not_taken(exchange)
            why = self._why if self.ended else f"the MCP server {self.server.name} took nothing"
            self._flight.finish(
                exchange, error(message.id, INVALID_REQUEST, why), Outcome.FAILED, why
            )
        return exchange

    def _stopped(self, exchange: Exchange, stop: Stop) -> Exchange:
        if stop.outcome is not Outcome.CANCELLED:
            return self._refuse(exchange, stop.code, stop.why, stop.outcome)
        self._flight.settle(
            exchange, Answer(None, Outcome.CANCELLED, why=stop.why)
        )  # answered nothing
        return exchange

    def _refuse(self, exchange: Exchange, code: int, why: str, outcome: Outcome) -> Exchange:
        self._flight.finish(exchange, error(exchange.request.id, code, why), outcome, why)
        return exchange

    async def notify(self, message: JSONRPCNotification) -> str | None:
        """Relay the agent's notification, or say why it is not (a notification the door
        does not know); a cancellation also ends the request it names (answered nothing:
        the agent gave up on it)."""
        self.last_used = self._clock()
        refused = refusal(message)
        if refused is not None:
            return refused
        if message.method in DROPPED:  # the door speaks for the client, not the agent
            return None
        if message.method == "notifications/cancelled":
            named = param(message, "requestId")
            if self._gate.withdraw(named):  # given up while asked: the ask ends, not relayed
                return None
            deciding = self._flight.deciding(named)
            if deciding is not None:  # its verdict just in
                deciding.withdrawn = True
                return None
            exchange = self._flight.waiting(named)
            if exchange is not None:
                self._flight.settle(
                    exchange, Answer(None, Outcome.CANCELLED, why="cancelled by the agent")
                )
        await self._send(message)
        return None

    async def _send(self, message: JSONRPCMessage) -> bool:
        """Pass ``message`` to the server's connection; whether it took it. A server that
        takes nothing (a stdio server not reading its input) holds the agent no longer
        than its timeout."""
        write = self._write
        if write is None:
            return False
        version = self._from_server.version
        headers = {MCP_PROTOCOL_VERSION_HEADER: version} if version else None
        try:
            with anyio.fail_after(self.server.timeout):
                await write.send(SessionMessage(message, ClientMessageMetadata(headers=headers)))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, TimeoutError):
            return False
        return True

    def _expire(self, exchange: Exchange) -> None:
        if exchange.answer is not None:
            return
        seconds = f"{self.server.timeout:g}"
        why = (
            f"the MCP server {self.server.name} did not answer {exchange.method} within {seconds} s"
        )
        request_id = exchange.request.id
        self._flight.finish(exchange, error(request_id, REQUEST_TIMEOUT, why), Outcome.TIMEOUT, why)
        cancel = JSONRPCNotification(
            jsonrpc="2.0",
            method="notifications/cancelled",
            params={"requestId": request_id, "reason": "timed out at Fleetwarden's door"},
        )
        self._reply(cancel)

    def _reply(self, message: JSONRPCMessage) -> None:
        self._spawn(self._send(message))

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- to the agent ---------------------------------------------------------------

    def listen(self) -> AsyncGenerator[bytes, None]:
        """The server's messages no answer carries, until the session ends (or another
        listener takes over)."""
        return self._from_server.listen()


class SessionEnded(Exception):
    """The session's server could not be reached, or ended: the words for the agent."""


def _words(exc: BaseException) -> str:
    """What an exception (a group of them, as anyio raises) says, in one line."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_words(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
