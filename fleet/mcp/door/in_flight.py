"""The agent's requests one MCP session has in flight, each from the id it takes to the one
answer that settles it.

An id still in flight, or given up on (timed out, cancelled) and perhaps still answered by
the server, is not taken again: that answer would go astray. Each request ends once
(:meth:`~fleet.mcp.door.wire.exchange.Exchange.end`); then a priced call is billed as the
:class:`~fleet.mcp.door.rules.gate.Gate` bills it (its server's price when it was handed to the
server, whatever its end; nothing when it never was), and an audited call's record is made
and told once its answer is on its way. The session (:mod:`fleet.mcp.door.session`) decides
what each message is; this book keeps which request it is about."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, Final

from fleet.mcp.door.rules.gate import Gate
from fleet.mcp.door.wire.exchange import GIVEN_UP, Answer, Exchange, audit_of
from fleet.mcp.door.wire.outgoing import Outgoing
from fleet.mcp.hooks import McpHooks, Outcome
from fleet.mcp.model import McpServer
from fleet.mcp.upstream.credentials import Scrub
from fleet.mcp.wire import INVALID_REQUEST, JSONRPCError, RequestId, dump, error

MAX_LATE: Final = 64
"""Requests of the agent's given up on (timed out, cancelled) whose ids a session keeps
from reuse until the server answers them; past it, the oldest is forgotten."""

Spawn = Callable[[Coroutine[Any, Any, object]], None]
"""Runs work in a task its session owns (and waits for, within a bound, as it closes)."""


class InFlight:
    """``agent``'s requests in flight in its session with ``server``. ``gate`` bills a priced
    call; ``hooks`` are told an audited call's record, in a task given to ``spawn``;
    ``scrub``: what the door's own answers pass; ``redact``: the audit's words; ``clock``:
    a call's seconds at the server."""

    def __init__(
        self,
        agent: str,
        server: McpServer,
        gate: Gate,
        hooks: McpHooks,
        *,
        scrub: Outgoing | Scrub,
        redact: Callable[[str], str],
        clock: Callable[[], float],
        spawn: Spawn,
    ) -> None:
        self._agent = agent
        self._server = server
        self._gate = gate
        self._hooks = hooks
        self._scrub = scrub
        self._redact = redact
        self._clock = clock
        self._spawn = spawn
        self._pending: dict[RequestId, Exchange] = {}  # relayed, waiting on the server
        self._open: dict[RequestId, Exchange] = {}  # the agent's requests, asked or relayed
        self._late: OrderedDict[RequestId, None] = OrderedDict()  # timed out, cancelled
        self._claims: dict[Exchange, tuple[object, bool]] = {}  # priced calls: relayed?

    # -- which request ------------------------------------------------------------------

    def taken(self, request_id: RequestId) -> bool:
        """Whether ``request_id`` may still be answered: a new request's answer would go
        astray."""
        return request_id in self._open or request_id in self._late

    def begin(self, exchange: Exchange) -> None:
        """``exchange`` takes its id: being decided, then relayed."""
        self._open[exchange.request.id] = exchange

    def forget(self, exchange: Exchange) -> None:
        """``exchange`` ended unanswered (its request cancelled while it was decided)."""
        self._open.pop(exchange.request.id, None)

    def sent(self, exchange: Exchange, claim: object) -> None:
        """``exchange`` handed to the server, waiting on its answer; a priced call (its
        ``claim``) billed, whatever its end."""
        self._pending[exchange.request.id] = exchange
        if exchange.audited and self._server.price_per_call is not None:
            self._claims[exchange] = (claim, True)

    def not_taken(self, exchange: Exchange) -> None:
        """The server never took ``exchange``: a priced call not billed."""
        priced = self._claims.get(exchange)
        if priced is not None:
            self._claims[exchange] = (priced[0], False)

    def waiting(self, request_id: object) -> Exchange | None:
        """The request of ``request_id`` relayed and waiting on the server's answer."""
        return self._pending.get(request_id) if isinstance(request_id, str | int) else None

    def deciding(self, request_id: object) -> Exchange | None:
        """The request of ``request_id`` not yet relayed (its call's verdict just in)."""
        if not isinstance(request_id, str | int) or request_id in self._pending:
            return None
        return self._open.get(request_id)

    def awaited(self) -> list[Exchange]:
        """The requests relayed and waiting on the server's answers, oldest first."""
        return list(self._pending.values())

    def answered_late(self, request_id: RequestId | None) -> None:
        """The server answered a request no one waits for: if one given up on, its id is
        free again."""
        if request_id is not None:
            self._late.pop(request_id, None)

    # -- its end ------------------------------------------------------------------------

    def end_all(self, why: str) -> None:
        """The session ended: every request waiting on the server answered ``why``."""
        for exchange in self.awaited():
            self.finish(
                exchange, error(exchange.request.id, INVALID_REQUEST, why), Outcome.FAILED, why
            )

    def finish(self, exchange: Exchange, answer: JSONRPCError, outcome: Outcome, why: str) -> None:
        """End ``exchange`` with the door's own ``answer`` (scrubbed like every message to the
        agent; one that no longer parses becomes a bare refusal)."""
        raw = self._scrub.json(dump(answer)) or dump(error(answer.id, answer.error.code, "refused"))
        self.settle(exchange, Answer(raw, outcome, why=why))

    def settle(self, exchange: Exchange, answer: Answer) -> None:
        """End ``exchange`` with ``answer``, once: its id freed (kept from reuse if the server
        may answer it yet), a priced call billed, an audited call's record told."""
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
        seconds, name = max(0.0, self._clock() - exchange.started), self._server.name
        made = partial(audit_of, exchange, answer, self._agent, name, seconds, cost, self._redact)
        self._spawn(self._hooks.audit_made(made))  # made once the answer is on its way
