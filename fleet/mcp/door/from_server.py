"""What the server says in one MCP session, on its way to the agent: its answers, its
requests of the client, its notifications.

* An answer settles the request it names (:class:`~fleet.mcp.door.in_flight.InFlight`): an
  error's words redacted and cut to one line; a result shaped as the door relays it
  (:func:`fleet.mcp.door.rules.methods.as_answered`: ``tools/list`` only the tools the agent's
  grant allows now); one over :data:`fleet.mcp.wire.MAX_MESSAGE` becomes an error saying
  so. An answer no one waits for is dropped.
* A request of the client's is answered by the door, never relayed
  (:func:`fleet.mcp.door.rules.handshake.answer_of`).
* A notification of progress rides the streamed answer of the request it is about; any
  other message rides a streamed answer while no one listens, else waits for the agent's
  listening stream (:class:`~fleet.mcp.door.wire.held.Held`).

Every message to the agent has every secret Fleetwarden holds scrubbed out
(:class:`~fleet.mcp.door.wire.outgoing.Outgoing`); one that is too large is not relayed."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from typing import Final

from fleet.mcp.door.in_flight import InFlight
from fleet.mcp.door.rules.handshake import answer_of
from fleet.mcp.door.rules.methods import as_answered
from fleet.mcp.door.wire.exchange import Answer, Exchange
from fleet.mcp.door.wire.held import Held
from fleet.mcp.door.wire.outgoing import Outgoing
from fleet.mcp.hooks import Outcome
from fleet.mcp.model import McpServer
from fleet.mcp.upstream.capped import error_outcome
from fleet.mcp.upstream.credentials import Scrub
from fleet.mcp.wire import (
    INVALID_REQUEST,
    MAX_MESSAGE,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCRequest,
    JSONRPCResponse,
    dump,
    error,
    param,
)
from fleet.redaction.guard import guarded

log = logging.getLogger(__name__)

ERROR_CHARS: Final = 500
"""Characters of a server's error's words the agent gets at most."""


class FromServer:
    """``server``'s messages to ``agent``, about the requests ``flight`` holds. ``allows``:
    whether the agent's grant allows a tool now; ``roots``: the folders the door tells the
    server of; ``reply``: sends the door's answer to a request of the server's; ``scrub``:
    what every message to the agent passes; ``redact``: the app's redactor, for the words
    of the server's errors."""

    def __init__(
        self,
        agent: str,
        server: McpServer,
        flight: InFlight,
        allows: Callable[[str], bool],
        *,
        roots: Sequence[Path],
        reply: Callable[[JSONRPCMessage], None],
        scrub: Outgoing | Scrub,
        redact: Callable[[str], str],
    ) -> None:
        self._agent = agent
        self._server = server
        self._flight = flight
        self._allows = allows
        self._roots = roots
        self._reply = reply
        self._scrub = scrub
        self._redact = redact
        self._held = Held(f"{agent} (MCP server {server.name})")
        self.version: str | None = None
        """The protocol version the server answered ``initialize`` with, once it has."""

    def take(self, message: JSONRPCMessage) -> None:
        """Pass on ``message``, as the server sent it, to where it goes."""
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            exchange = self._flight.waiting(message.id)
            if exchange is None:
                self._flight.answered_late(message.id)
                log.info("MCP server %s answered a request no one waits for", self._server.name)
                return
            self._answered(exchange, message)
            return
        if isinstance(message, JSONRPCRequest):  # of the client: the door answers
            asked = guarded(message.method, self._redact, 64)
            log.info("MCP server %s asked %s of its client", self._server.name, asked)
            self._reply(answer_of(message, self._roots))
            return
        relayed = self._outgoing(message)
        if relayed is None:
            return
        token = (
            param(message, "progressToken") if message.method == "notifications/progress" else None
        )
        for exchange in self._flight.awaited():
            if token is not None and exchange.progress_token == token and exchange.streamed:
                exchange.relay(relayed)
                return
        self._hold(relayed)

    def _answered(self, exchange: Exchange, message: JSONRPCResponse | JSONRPCError) -> None:
        name = self._server.name
        if isinstance(message, JSONRPCError):
            words = guarded(message.error.message, self._redact, ERROR_CHARS)
            reworded = error(message.id, message.error.code, words, message.error.data)
            self._flight.finish(exchange, reworded, error_outcome(message), words)
            return
        result = message.result
        if exchange.method == "initialize":
            version = result.get("protocolVersion")
            self.version = version if isinstance(version, str) else None
        shaped = as_answered(exchange.method, result, self._allows)
        if shaped is not result:
            message = JSONRPCResponse(jsonrpc="2.0", id=message.id, result=shaped)
        outcome = Outcome.ERROR if result.get("isError") is True else Outcome.OK
        relayed = self._outgoing(message)
        if relayed is None:
            why = f"the answer of the MCP server {name} was not relayed: over {MAX_MESSAGE} bytes"
            too_large = error(message.id, INVALID_REQUEST, why)
            self._flight.finish(exchange, too_large, Outcome.TOO_LARGE, why)
            return
        self._flight.settle(
            exchange, Answer(relayed, outcome, result if exchange.audited else None)
        )

    def _outgoing(self, message: JSONRPCMessage) -> bytes | None:
        """``message`` as the agent gets it: credentials scrubbed; ``None`` if too large."""
        raw = self._scrub.json(dump(message))
        if raw is None or len(raw) > MAX_MESSAGE:
            log.warning(
                "MCP server %s: a message to %s not relayed", self._server.name, self._agent
            )
            return None
        return raw

    # -- the agent's listening stream --------------------------------------------------

    def _hold(self, message: bytes) -> None:
        if not self._held.listening:
            streamed = next((e for e in self._flight.awaited() if e.streamed), None)
            if streamed is not None:
                streamed.relay(message)
                return
        self._held.hold(message)

    def listen(self) -> AsyncGenerator[bytes, None]:
        """The messages no answer carries, until the session ends (or another listener
        takes over)."""
        return self._held.listen()

    def end(self) -> None:
        """The session ended: its listener stops after what is held."""
        self._held.end()
