"""One agent's MCP session with one server through the door, over a connection of its own.

**One upstream connection per session.** Each session an agent's CLI opens at the door
(its ``initialize``) gets its own connection to the server (a stdio server: its own process
in the agent's sandbox of it, ended with the session). Nothing is shared between agents
(one agent's sessions share only their sandbox's HOME): the server sees one client's
handshake, so every message keeps its ids. The cost is a start per session, within a cap.

**What is relayed.** Each method the door knows (:mod:`fleet.mcp.door.methods`; any other is
refused), but:

* the handshake speaks for the client as the door does, not as the agent would, and the
  server's requests of the client are answered by the door, never relayed
  (:mod:`fleet.mcp.door.handshake`): no agent widens a server's roots or is asked by it;

* ``tools/list``: only the tools the agent may call, as its grant is now;
* a call (a tool's, a resource's read, a prompt's get) is checked first
  (:class:`fleet.mcp.door.gate.Gate`: a tool off the grant refused, its asks, a priced server's
  claim on the run's cap and budgets); one the agent cancels or hangs up on while it is
  asked ends its ask and is never relayed: a late yes can run nothing;
* every request of the agent's has the server's ``timeout``: past it the agent gets an
  error, the server a ``notifications/cancelled``, and a late answer is dropped;
* every message to the agent has every secret Fleetwarden holds scrubbed out
  (:class:`~fleet.mcp.door.outgoing.Outgoing`), and one over
  :data:`fleet.mcp.wire.MAX_MESSAGE` is not relayed (an answer becomes an error saying so);
* an error's words from the server are redacted and cut to one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from functools import partial
from typing import Any, Final

import anyio
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.message import ClientMessageMetadata, SessionMessage

from fleet.mcp.door.exchange import GIVEN_UP, Answer, Exchange, audit_of
from fleet.mcp.door.gate import Gate, Stop
from fleet.mcp.door.handshake import DROPPED, answer_of, as_sent, roots_of
from fleet.mcp.door.held import Held
from fleet.mcp.door.limits import SessionGrounds
from fleet.mcp.door.methods import CALLS, METHOD_NOT_FOUND, as_answered, refusal, relayed
from fleet.mcp.door.outgoing import Outgoing
from fleet.mcp.door.waiting import Gone, there
from fleet.mcp.hooks import Outcome
from fleet.mcp.model import McpGrant, McpServer
from fleet.mcp.upstream.capped import error_outcome
from fleet.mcp.upstream.connect import open_upstream
from fleet.mcp.upstream.credentials import MissingCredential, Scrub
from fleet.mcp.wire import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    MAX_MESSAGE,
    REQUEST_TIMEOUT,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    dump,
    error,
    param,
)
from fleet.redaction.guard import guarded

log = logging.getLogger(__name__)

CLOSE_SECONDS: Final = 10.0
"""Seconds a session's connection has to close (a stdio server to exit, an HTTP server to
take the session's end) before it is cut."""
ERROR_CHARS: Final = 500
MAX_LATE: Final = 64
"""Requests of the agent's given up on (timed out, cancelled) whose ids a session keeps
from reuse until the server answers them; past it, the oldest is forgotten."""


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
        self._grant = grant
        self._environ = grounds.environ
        self._hooks = hooks = grounds.hooks
        self._scrub = scrub
        self._redact = redact
        self._errlog = grounds.errlog
        self._clock = clock = grounds.clock
        self.last_used = clock()
        self._pending: dict[RequestId, Exchange] = {}
        self._open: dict[RequestId, Exchange] = {}  # the agent's requests, asked or relayed
        self._late: OrderedDict[RequestId, None] = OrderedDict()  # timed out, cancelled
        self._gate = Gate(agent, server, grant, hooks)
        self._claims: dict[Exchange, tuple[object, bool]] = {}  # priced calls: relayed?
        self._held = Held(f"{agent} (MCP server {server.name})")
        self._write: Any = None
        self._version: str | None = None
        self._roots = roots_of(server)
        self._ready = asyncio.Event()
        self._ended = asyncio.Event()
        self._why = f"the MCP server {server.name} ended the session"
        self._scope: anyio.CancelScope | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

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
            for task in late:
                task.cancel()

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
                        self._from_server(item.message)
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
        self._held.end()
        for exchange in list(self._pending.values()):
            self._finish(
                exchange, error(exchange.request.id, INVALID_REQUEST, why), Outcome.FAILED, why
            )

    # -- from the agent ---------------------------------------------------------------

    async def request(
        self, message: JSONRPCRequest, size: int, *, streamed: bool, gone: Gone | None = None
    ) -> Exchange:
        """Relay the agent's request ``message`` (``size`` bytes as posted) as the door
        relays it (:func:`fleet.mcp.door.methods.relayed`); the exchange its answer comes on
        (already ended when the door answers it itself). ``gone``: whether the agent has
        hung up, looked at while a call is asked and before it is relayed."""
        self.last_used = now = self._clock()
        exchange = Exchange(relayed(as_sent(message, self._roots)), now, size, streamed)
        if message.id in self._open or message.id in self._late:  # its answer would go astray
            why = f"a request with id {message.id!r} may still be answered: use another id"
            return self._refuse(exchange, INVALID_REQUEST, why, Outcome.REFUSED)
        self._open[message.id] = exchange
        refused = refusal(message)
        if refused is not None:
            code = INVALID_PARAMS if message.method in CALLS else METHOD_NOT_FOUND
            return self._refuse(exchange, code, refused, Outcome.REFUSED)
        claim: object = None
        if exchange.audited:
            try:
                stop = await self._gate.decide(exchange, gone or there)
            except asyncio.CancelledError:
                self._open.pop(message.id, None)
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
        self._pending[message.id] = exchange
        timeout = self.server.timeout
        exchange.timer = asyncio.get_running_loop().call_later(timeout, self._expire, exchange)
        priced = exchange.audited and self.server.price_per_call is not None
        if priced:  # handed to the server: billed, whatever its end
            self._claims[exchange] = (claim, True)
        if not await self._send(exchange.request):
            if priced and exchange.answer is None:  # never taken: not billed
                self._claims[exchange] = (claim, False)
            why = self._why if self.ended else f"the MCP server {self.server.name} took nothing"
            self._finish(exchange, error(message.id, INVALID_REQUEST, why), Outcome.FAILED, why)
        return exchange

    def _stopped(self, exchange: Exchange, stop: Stop) -> Exchange:
        if stop.outcome is not Outcome.CANCELLED:
            return self._refuse(exchange, stop.code, stop.why, stop.outcome)
        self._settle(exchange, Answer(None, Outcome.CANCELLED, why=stop.why))  # answered nothing
        return exchange

    def _refuse(self, exchange: Exchange, code: int, why: str, outcome: Outcome) -> Exchange:
        self._finish(exchange, error(exchange.request.id, code, why), outcome, why)
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
            deciding = self._open.get(named) if isinstance(named, str | int) else None
            if deciding is not None and named not in self._pending:  # its verdict just in
                deciding.withdrawn = True
                return None
            exchange = self._pending.get(named) if isinstance(named, str | int) else None
            if exchange is not None:
                self._settle(
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
        headers = {MCP_PROTOCOL_VERSION_HEADER: self._version} if self._version else None
        try:
            with anyio.fail_after(self.server.timeout):
                await write.send(SessionMessage(message, ClientMessageMetadata(headers=headers)))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, TimeoutError):
            return False
        return True

    # -- from the server --------------------------------------------------------------

    def _from_server(self, message: JSONRPCMessage) -> None:
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            exchange = self._pending.get(message.id) if message.id is not None else None
            if exchange is None:
                if message.id is not None:  # one given up on: its id is free again
                    self._late.pop(message.id, None)
                log.info("MCP server %s answered a request no one waits for", self.server.name)
                return
            self._answered(exchange, message)
            return
        if isinstance(message, JSONRPCRequest):  # of the client: the door answers
            asked = guarded(message.method, self._redact, 64)
            log.info("MCP server %s asked %s of its client", self.server.name, asked)
            self._spawn(self._send(answer_of(message, self._roots)))
            return
        relayed = self._outgoing(message)
        if relayed is None:
            return
        token = (
            param(message, "progressToken") if message.method == "notifications/progress" else None
        )
        for exchange in self._pending.values():
            if token is not None and exchange.progress_token == token and exchange.streamed:
                exchange.relay(relayed)
                return
        self._hold(relayed)

    def _answered(self, exchange: Exchange, message: JSONRPCResponse | JSONRPCError) -> None:
        name = self.server.name
        if isinstance(message, JSONRPCError):
            words = guarded(message.error.message, self._redact, ERROR_CHARS)
            reworded = error(message.id, message.error.code, words, message.error.data)
            self._finish(exchange, reworded, error_outcome(message), words)
            return
        result = message.result
        if exchange.method == "initialize":
            version = result.get("protocolVersion")
            self._version = version if isinstance(version, str) else None
        shaped = as_answered(exchange.method, result, self._gate.allows)
        if shaped is not result:
            message = JSONRPCResponse(jsonrpc="2.0", id=message.id, result=shaped)
        outcome = Outcome.ERROR if result.get("isError") is True else Outcome.OK
        relayed = self._outgoing(message)
        if relayed is None:
            why = f"the answer of the MCP server {name} was not relayed: over {MAX_MESSAGE} bytes"
            self._finish(exchange, error(message.id, INVALID_REQUEST, why), Outcome.TOO_LARGE, why)
            return
        self._settle(exchange, Answer(relayed, outcome, result if exchange.audited else None))

    def _outgoing(self, message: JSONRPCMessage) -> bytes | None:
        """``message`` as the agent gets it: credentials scrubbed; ``None`` if too large."""
        raw = self._scrub.json(dump(message))
        if raw is None or len(raw) > MAX_MESSAGE:
            log.warning("MCP server %s: a message to %s not relayed", self.server.name, self.agent)
            return None
        return raw

    def _expire(self, exchange: Exchange) -> None:
        if exchange.answer is not None:
            return
        seconds = f"{self.server.timeout:g}"
        why = (
            f"the MCP server {self.server.name} did not answer {exchange.method} within {seconds} s"
        )
        request_id = exchange.request.id
        self._finish(exchange, error(request_id, REQUEST_TIMEOUT, why), Outcome.TIMEOUT, why)
        cancel = JSONRPCNotification(
            jsonrpc="2.0",
            method="notifications/cancelled",
            params={"requestId": request_id, "reason": "timed out at Fleetwarden's door"},
        )
        self._spawn(self._send(cancel))

    def _finish(self, exchange: Exchange, answer: JSONRPCError, outcome: Outcome, why: str) -> None:
        raw = self._scrub.json(dump(answer)) or dump(error(answer.id, answer.error.code, "refused"))
        self._settle(exchange, Answer(raw, outcome, why=why))

    def _settle(self, exchange: Exchange, answer: Answer) -> None:
        request_id = exchange.request.id
        if self._pending.get(request_id) is exchange and answer.outcome in GIVEN_UP:
            self._late[request_id] = None  # the server may answer it yet: no new request's
            while len(self._late) > MAX_LATE:
                self._late.popitem(last=False)
        for held in (self._pending, self._open):
            if held.get(request_id) is exchange:
                del held[request_id]
        if not exchange.end(answer):
            return
        priced = self._claims.pop(exchange, None)
        cost = None if priced is None else self._gate.bill(*priced)
        if not exchange.audited:
            return
        seconds, name = max(0.0, self._clock() - exchange.started), self.server.name
        made = partial(audit_of, exchange, answer, self.agent, name, seconds, cost, self._redact)
        self._spawn(self._hooks.audit_made(made))  # made once the answer is on its way

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the agent's listening stream --------------------------------------------------

    def _hold(self, message: bytes) -> None:
        if not self._held.listening:
            streamed = next((e for e in self._pending.values() if e.streamed), None)
            if streamed is not None:
                streamed.relay(message)
                return
        self._held.hold(message)

    def listen(self) -> AsyncGenerator[bytes, None]:
        """The server's messages no answer carries, until the session ends (or another
        listener takes over)."""
        return self._held.listen()


class SessionEnded(Exception):
    """The session's server could not be reached, or ended: the words for the agent."""


def _words(exc: BaseException) -> str:
    """What an exception (a group of them, as anyio raises) says, in one line."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_words(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
