"""What a session checks of a call (:data:`fleet.mcp.door.rules.methods.CALLS`) before it relays it
(:class:`Gate`): the tool on the agent's grant as the roster has it now (a ``roster
reload`` that narrows it applies to the sessions already open, at their next call), the
call well formed, its asks (:class:`~fleet.mcp.hooks.McpHooks`: the agent's mode and
rules, a person in chat), and — on a priced server — its claim on the run's cap and
budgets; then what it is billed once it ended (its server's price when it was handed to
the server, whatever its end; nothing when it never was)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fleet.mcp.config.tool_names import near_allowed
from fleet.mcp.door.rules.calls import malformed
from fleet.mcp.door.rules.methods import CALLS
from fleet.mcp.door.wire.exchange import COMPLETION, Exchange
from fleet.mcp.door.wire.waiting import HUNG_UP, Gone, verdict_while_there
from fleet.mcp.hooks import McpCall, McpHooks, Outcome, Verdict
from fleet.mcp.model import McpGrant, McpServer
from fleet.mcp.wire import INVALID_PARAMS, INVALID_REQUEST, RequestId
from fleet.redaction.guard import guarded

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Stop:
    """A call the door ends itself: its outcome, the words for the agent and the audit, and
    the JSON-RPC error's code (a cancelled call is answered nothing)."""

    outcome: Outcome
    why: str
    code: int = INVALID_REQUEST


class Gate:
    """``agent``'s calls of ``server``, its grant read through ``grant`` at each call."""

    def __init__(
        self,
        agent: str,
        server: McpServer,
        grant: Callable[[], McpGrant | None],
        hooks: McpHooks,
    ) -> None:
        self._agent = agent
        self._server = server
        self._grant = grant
        self._hooks = hooks
        self._asking: dict[RequestId, asyncio.Future[Verdict]] = {}  # calls being asked

    def allows(self, tool: str) -> bool:
        """Whether the agent's grant, as the roster has it now, allows ``tool``."""
        grant = self._grant()
        return grant is not None and grant.allows(self._server, tool)

    def withdraw(self, request_id: object) -> bool:
        """End the ask of the call of ``request_id`` (the agent gave up on it); whether one
        was being asked."""
        asking = self._asking.get(request_id) if isinstance(request_id, str | int) else None
        return asking is not None and asking.cancel()  # not when its verdict is in already

    async def decide(self, exchange: Exchange, gone: Gone) -> Stop | None:
        """Why the call of ``exchange`` is not relayed (refused, denied, given up on while
        asked), or ``None``: it may be. Raises :class:`asyncio.CancelledError` when the
        request itself is cancelled."""
        name, arguments = exchange.name, exchange.arguments
        tool = exchange.method == "tools/call"
        bad = malformed(name, arguments) if tool else _unnamed(exchange)
        if bad is not None:
            return Stop(Outcome.REFUSED, bad, INVALID_PARAMS)
        if tool and not self.allows(name):
            return self._not_allowed(name)
        shown = arguments if isinstance(arguments, dict) else {}
        call = McpCall(self._agent, self._server.name, name, shown, exchange.method)
        asking = asyncio.ensure_future(self._hooks.ask(call))
        self._asking[exchange.request.id] = asking
        try:
            verdict = await verdict_while_there(asking, gone)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the request itself was cancelled, not only its ask
            return Stop(Outcome.CANCELLED, "cancelled by the agent while it was asked")
        finally:
            self._asking.pop(exchange.request.id, None)
        if verdict is None:
            return Stop(Outcome.CANCELLED, HUNG_UP)
        if not verdict.allowed:
            why = f"the call of {guarded(name)} was denied" + (
                f": {verdict.why}" if verdict.why else ""
            )
            return Stop(Outcome.DENIED, why)
        if tool and not self.allows(name):  # the grant narrowed while it was asked
            return self._not_allowed(name)
        return None

    def _not_allowed(self, tool: str) -> Stop:
        why = f"the tool {guarded(tool)} of the MCP server {self._server.name} is not allowed"
        grant = self._grant()
        listed = self._server.tools if self._server.tools is not None else None
        if listed is None and grant is not None:
            listed = grant.tools
        allowed = [n for n in listed or () if grant is not None and grant.allows(self._server, n)]
        near = near_allowed(tool, allowed)
        if near is not None:
            # Either side may be the typo: a tools: entry misspelt hides the real tool.
            why += (
                f": did you mean {near!r}? If the server's tool is spelt {guarded(tool)}, the "
                f"config's tools: (mcp.{self._server.name}, or the agent's grant) names it "
                f"{near!r}: spell it there as the server lists it"
            )
        log.warning("MCP door: %s asked for a tool not allowed: %s", self._agent, why)
        return Stop(Outcome.REFUSED, why, INVALID_PARAMS)

    def claim(self) -> object | Stop:
        """A priced call's claim on its run's cap and budgets (``None``: not priced, or no
        billing to claim on), or why it may not be relayed."""
        price, billing = self._server.price_per_call, self._hooks.billing
        if price is None or billing is None:
            return None
        try:
            claimed = billing.claim(self._agent, self._server.name, price)
        except Exception:
            log.exception("MCP door: %s's call could not be held against its budgets", self._agent)
            return Stop(Outcome.REFUSED, "the call could not be held against its run's budgets")
        return Stop(Outcome.REFUSED, claimed) if isinstance(claimed, str) else claimed

    def bill(self, claim: object, relayed: bool) -> float | None:
        """What a call that ended is billed: its server's price when it was ``relayed`` (its
        ``claim`` settled), else nothing (its claim let go)."""
        price = self._server.price_per_call if relayed else None
        billing = self._hooks.billing
        if claim is not None and billing is not None:
            try:
                billing.settle(claim, price)
            except Exception:
                log.exception("MCP door: %s's call could not be billed", self._agent)
        return price


def _unnamed(exchange: Exchange) -> str | None:
    """Why a read (a resource's, a prompt's) or a completion names nothing, or ``None``."""
    if exchange.name:
        return None
    if exchange.method == COMPLETION:
        return (
            f"{COMPLETION} needs params.ref: a prompt's name (ref/prompt) or a resource "
            "template's uri (ref/resource)"
        )
    return f"{exchange.method} needs params.{CALLS[exchange.method]}"
