"""One agent's MCP session with one server through the door, over a connection of its own.

**One upstream connection per session.** Each session an agent's CLI opens at the door
(its ``initialize``) gets its own connection to the server — for a stdio server, its own
process, started by that ``initialize`` and ended with the session. Nothing is shared
between agents, nor between two sessions of one agent: a server's state (a subscription,
roots, a login it caches, a file it keeps open) cannot leak from one to the other, and the
server sees exactly one client's handshake, as the protocol expects, so every message is
relayed as it came, its ids untouched. The cost is a start per session (a stdio server's
process, an HTTP server's handshake), bounded by the door's cap on an agent's sessions.

**What is relayed.** Every message both ways, whatever its method (initialize, tools,
resources, prompts, completion, logging, ping, progress, cancellation, the server's own
requests — sampling, roots, elicitation — and the agent's answers to them), but:

* ``tools/list``: only the tools the agent may call (:meth:`McpGrant.allows`);
* ``tools/call`` of any other tool: refused here, never relayed; an allowed one is asked
  of the hooks first (:class:`fleet.mcp.hooks.McpHooks`), and one the agent cancels while
  it is asked ends its ask and is never relayed (nor its cancellation); so does one whose
  agent hangs up while it is asked (its HTTP connection closed, no cancellation sent): a
  late yes can run nothing;
* every request of the agent's has the server's ``timeout``: past it the agent gets an
  error, the server a ``notifications/cancelled``, and a late answer is dropped;
* every message to the agent has the held credentials scrubbed out, and one over
  :data:`fleet.mcp.wire.MAX_MESSAGE` is not relayed (an answer becomes an error saying so);
* an error's words from the server are redacted and cut to one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Final, TextIO

import anyio
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.message import ClientMessageMetadata, SessionMessage

from fleet.mcp.calls import malformed
from fleet.mcp.capped import error_outcome
from fleet.mcp.credentials import MissingCredential, Scrub
from fleet.mcp.exchange import Answer, Exchange, audit_text
from fleet.mcp.held import Held
from fleet.mcp.hooks import McpAudit, McpCall, McpHooks, Outcome, Verdict
from fleet.mcp.model import McpGrant, McpServer
from fleet.mcp.upstream import open_upstream
from fleet.mcp.waiting import HUNG_UP, Gone, there, verdict_while_there
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


class Session:
    """``agent``'s session ``id`` with ``server``, as ``grant`` lets it. ``redact``: the
    app's redactor, for the words of the server's errors and the audit."""

    def __init__(
        self,
        session_id: str,
        agent: str,
        server: McpServer,
        grant: McpGrant,
        *,
        environ: Mapping[str, str],
        hooks: McpHooks,
        scrub: Scrub,
        redact: Callable[[str], str],
        errlog: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = session_id
        self.agent = agent
        self.server = server
        self.grant = grant
        self._environ = environ
        self._hooks = hooks
        self._scrub = scrub
        self._redact = redact
        self._errlog = errlog
        self._clock = clock
        self.last_used = clock()
        self._pending: dict[RequestId, Exchange] = {}
        self._asked: set[RequestId] = set()  # the server's requests the agent may answer
        self._asking: dict[RequestId, asyncio.Future[Verdict]] = {}  # calls being asked
        self._held = Held(f"{agent} (MCP server {server.name})")
        self._write: Any = None
        self._version: str | None = None
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
            async with open_upstream(self.server, self._environ, errlog=self._errlog) as streams:
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
            self._why = f"the MCP server {self.server.name} could not be reached"
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
        """Relay the agent's request ``message`` (``size`` bytes as posted); the exchange
        its answer comes on (already ended when the door answers it itself). ``gone``:
        whether the agent has hung up, looked at while a call is asked and before it is
        relayed."""
        self.last_used = self._clock()
        exchange = Exchange(message, self._clock(), size, streamed)
        if message.method == "tools/call":
            refused = await self._tool_refused(exchange, gone or there)
            if refused is not None:
                return refused
            exchange.started = self._clock()  # its time is the server's, not the ask's
        if self.ended:
            return self._refuse(exchange, INVALID_REQUEST, self._why, Outcome.FAILED)
        if message.id in self._pending:  # again: another came while this one was asked
            why = f"a request with id {message.id!r} is still waiting for its answer"
            return self._refuse(exchange, INVALID_REQUEST, why, Outcome.REFUSED)
        self._pending[message.id] = exchange
        loop = asyncio.get_running_loop()
        exchange.timer = loop.call_later(self.server.timeout, self._expire, exchange)
        if not await self._send(message):
            why = self._why if self.ended else f"the MCP server {self.server.name} took nothing"
            self._finish(exchange, error(message.id, INVALID_REQUEST, why), Outcome.FAILED, why)
        return exchange

    async def _tool_refused(self, exchange: Exchange, gone: Gone) -> Exchange | None:
        tool, arguments = exchange.name, param(exchange.request, "arguments")
        bad = malformed(tool, arguments)
        if bad is not None or not tool:
            return self._refuse(exchange, INVALID_PARAMS, bad or "", Outcome.REFUSED)
        if not self.grant.allows(self.server, tool):
            why = f"the tool {guarded(tool)} of the MCP server {self.server.name} is not allowed"
            log.warning("MCP door: %s asked for a tool not allowed: %s", self.agent, why)
            return self._refuse(exchange, INVALID_PARAMS, why, Outcome.REFUSED)
        call = McpCall(
            self.agent, self.server.name, tool, arguments if isinstance(arguments, dict) else {}
        )
        asking = asyncio.ensure_future(self._hooks.ask(call))
        self._asking[exchange.request.id] = asking
        try:
            verdict = await verdict_while_there(asking, gone)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the request itself was cancelled, not only its ask
            why = "cancelled by the agent while it was asked"
            self._settle(exchange, Answer(None, Outcome.CANCELLED, why=why))
            return exchange
        finally:
            self._asking.pop(exchange.request.id, None)
        if verdict is None:
            self._settle(exchange, Answer(None, Outcome.CANCELLED, why=HUNG_UP))
            return exchange
        if not verdict.allowed:
            why = f"the call of {guarded(tool)} was denied" + (
                f": {verdict.why}" if verdict.why else ""
            )
            return self._refuse(exchange, INVALID_REQUEST, why, Outcome.DENIED)
        return None

    def _refuse(self, exchange: Exchange, code: int, why: str, outcome: Outcome) -> Exchange:
        self._finish(exchange, error(exchange.request.id, code, why), outcome, why)
        return exchange

    async def notify(self, message: JSONRPCNotification) -> None:
        """Relay the agent's notification; a cancellation also ends the request it names
        (answered nothing: the agent gave up on it)."""
        self.last_used = self._clock()
        if message.method == "notifications/cancelled":
            named = param(message, "requestId")
            asking = self._asking.get(named) if isinstance(named, str | int) else None
            if asking is not None:  # given up while asked: the ask ends, nothing relayed
                asking.cancel()
                return
            exchange = self._pending.get(named) if isinstance(named, str | int) else None
            if exchange is not None:
                self._settle(
                    exchange, Answer(None, Outcome.CANCELLED, why="cancelled by the agent")
                )
        await self._send(message)

    async def answer(self, message: JSONRPCResponse | JSONRPCError) -> bool:
        """Relay the agent's answer to a request of the server's; whether the server asked
        one of that id."""
        self.last_used = self._clock()
        if message.id is None or message.id not in self._asked:
            return False
        self._asked.discard(message.id)
        await self._send(message)
        return True

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
                log.info("MCP server %s answered a request no one waits for", self.server.name)
                return
            self._answered(exchange, message)
            return
        if isinstance(message, JSONRPCRequest):
            self._asked.add(message.id)
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
        elif exchange.method == "tools/list" and isinstance(result.get("tools"), list):
            tools = [t for t in result["tools"] if self._listed(t)]
            message = JSONRPCResponse(
                jsonrpc="2.0", id=message.id, result={**result, "tools": tools}
            )
        outcome = Outcome.ERROR if result.get("isError") is True else Outcome.OK
        relayed = self._outgoing(message)
        if relayed is None:
            why = f"the answer of the MCP server {name} was not relayed: over {MAX_MESSAGE} bytes"
            self._finish(exchange, error(message.id, INVALID_REQUEST, why), Outcome.TOO_LARGE, why)
            return
        kept = audit_text(result, self._redact) if exchange.audited else ""
        self._settle(exchange, Answer(relayed, outcome, kept))

    def _listed(self, tool: object) -> bool:
        name = tool.get("name") if isinstance(tool, dict) else None
        return isinstance(name, str) and self.grant.allows(self.server, name)

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
        if self._pending.get(exchange.request.id) is exchange:
            del self._pending[exchange.request.id]
        if not exchange.end(answer) or not exchange.audited:
            return
        record = McpAudit(
            agent=self.agent,
            server=self.server.name,
            method=exchange.method,
            name=guarded(exchange.name, self._redact),
            outcome=answer.outcome,
            seconds=max(0.0, self._clock() - exchange.started),
            bytes_in=exchange.size,
            bytes_out=len(answer.message or b""),
            arguments=audit_text(param(exchange.request, "arguments") or {}, self._redact),
            result=answer.result,
            why=answer.why,
        )
        self._spawn(self._hooks.audit(record))

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

    @property
    def listening(self) -> bool:
        return self._held.listening

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
