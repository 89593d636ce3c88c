"""What the rest of Fleetwarden hears of and says to the door: a call about to be relayed (a
tool's call, a resource's read, a prompt's get, an argument's completion:
:data:`fleet.mcp.door.rules.methods.CALLS`) is asked of
each :class:`Ask` given (a person in chat, the permission rules; none given: every allowed
call is relayed), a call of a priced server is held against its run's cap and budgets
(:class:`Billing`) before it is relayed and billed once it was, and every call ends in one
:class:`McpAudit` given to each audit listener (the ledger, the agent's thread,
``/metrics``); a session's stdio server runs in the sandbox given
(:class:`~fleet.mcp.upstream.confined.StdioSandbox`, :meth:`McpHooks.confine`). They are
handed to the door when the app builds it (:class:`McpHooks`)."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, Protocol

from fleet.mcp.model import McpServer
from fleet.mcp.upstream.confined import Confine, StdioSandbox

log = logging.getLogger(__name__)

AUDIT_CHARS: Final = 500
"""Characters kept of a call's arguments and of its result in the audit (one line,
redacted, cut in the middle past it)."""


@dataclass(frozen=True, slots=True)
class McpCall:
    """A call an agent asks the door for, before it is relayed: ``method`` of ``tool`` (the
    tool's name; for ``resources/read`` and ``resources/subscribe`` the resource's URI, for
    ``prompts/get`` the prompt's name) with ``arguments`` exactly as they are relayed (a
    number JSON cannot carry already the ``null`` the server gets). ``arguments`` and ``tool``
    are the agent's, hostile text: whoever shows them guards them."""

    agent: str
    server: str
    tool: str
    arguments: Mapping[str, Any]
    method: str = "tools/call"

    @property
    def is_tool(self) -> bool:
        """Whether it is a tool's call (else a read: a resource, a prompt; or a completion)."""
        return self.method == "tools/call"

    @property
    def is_completion(self) -> bool:
        """Whether it is an argument's completion (``tool``: the prompt's name or the
        resource template's URI it completes for)."""
        return self.method == "completion/complete"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an :class:`Ask` answers: relay the call or not, and why in words for the agent
    and the audit ("denied in chat by @ana")."""

    allowed: bool
    why: str = ""


ALLOW: Final = Verdict(True)


class Ask(Protocol):
    """Asked before a call is relayed; may take as long as a person takes. Any
    exception it raises denies the call (fail closed)."""

    async def __call__(self, call: McpCall) -> Verdict: ...


class Outcome(enum.StrEnum):
    """How a call ended (the audit's and ``/metrics``' label)."""

    OK = "ok"  # the server answered it
    ERROR = "error"  # the server answered an error, or a tool result marked isError
    REFUSED = "refused"  # refused at the door: a tool not allowed, a method not relayed,
    # a call of a priced server past its run's cap or a budget
    DENIED = "denied"  # an ask said no
    TIMEOUT = "timeout"  # the server did not answer within the server's timeout
    FAILED = "failed"  # the server could not be reached, or ended
    TOO_LARGE = "too_large"  # the answer was over the cap: not relayed
    CANCELLED = "cancelled"  # the agent cancelled it


@dataclass(frozen=True, slots=True)
class McpAudit:
    """One call through the door: ``agent`` called ``name`` (a tool; a resource's URI or a
    prompt's name for ``resources/read`` and ``prompts/get``) of ``server`` with
    ``method``, ending in ``outcome`` after ``seconds``. ``bytes_in``: the agent's request
    as posted; ``bytes_out``: the answer as relayed to it. ``arguments`` and ``result``
    are redacted, one line, at most :data:`AUDIT_CHARS` each; ``why`` says a refusal's or
    a failure's reason, in the words the agent got. ``cost_usd``: what the call was billed
    (its server's ``price_per_call``, for every call relayed to it, whatever its end;
    ``None``: not billed)."""

    agent: str
    server: str
    method: str
    name: str
    outcome: Outcome
    seconds: float
    bytes_in: int
    bytes_out: int
    arguments: str
    result: str
    why: str = ""
    cost_usd: float | None = None


class Billing(Protocol):
    """What holds a priced call against its agent's run's cap and budgets before it is
    relayed (:meth:`claim`), then bills it (:meth:`settle`)."""

    def claim(self, agent: str, server: str, usd: float) -> object | str:
        """A claim of ``usd`` for ``agent``'s call of ``server``, or why it is refused (its
        run at its cap, a budget reached or holding its requests), in words for the agent.
        It answers at once: a call is never held waiting."""
        ...

    def settle(self, claim: object, usd: float | None) -> None:
        """The call of ``claim`` ended: billed ``usd`` (``None``: it was never relayed, so
        the claim is let go)."""
        ...


AuditListener = Callable[[McpAudit], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class McpHooks:
    """The listeners the app gives the door: ``asks`` asked in order before each call (the
    first that denies wins), ``billing`` holding a priced call before it is relayed
    (``None``: billed in the audit only, nothing enforced), ``audits`` told of each call's
    end; and where its stdio servers run (``sandbox``)."""

    asks: Sequence[Ask] = field(default_factory=tuple)
    audits: Sequence[AuditListener] = field(default_factory=tuple)
    billing: Billing | None = None
    sandbox: StdioSandbox | None = None
    """Where stdio servers run confined (``None``: as Fleetwarden's user)."""

    def confine(self, agent: str, server: McpServer) -> Confine | None:
        """How ``agent``'s session runs ``server`` in :attr:`sandbox` (``None``: unconfined)."""
        box = self.sandbox
        return None if box is None else partial(box.confined, agent, server)

    async def ask(self, call: McpCall) -> Verdict:
        """Whether ``call`` is relayed: allowed unless an ask denies it or fails."""
        for ask in self.asks:
            try:
                verdict = await ask(call)
            except Exception:
                log.exception(
                    "MCP door: an ask failed on %s's call; the call is denied", call.agent
                )
                return Verdict(False, "the approval could not be asked")
            if not verdict.allowed:
                return verdict
        return ALLOW

    async def audit_made(self, made: Callable[[], McpAudit]) -> None:
        """Make the record (its texts redacted: the door does so off the answer's way, in
        a task the session's close waits for), then :meth:`audit` it. The task yields to
        the loop once first: the request's handler, woken by the answer in the same turn,
        has it written out before the record (a dump of up to a megabyte) is made."""
        await asyncio.sleep(0)
        await self.audit(made())

    async def audit(self, record: McpAudit) -> None:
        """Tell each listener of ``record``; one that fails is logged, the rest still told."""
        for listener in self.audits:
            try:
                await listener(record)
            except Exception:
                log.exception("MCP door: an audit listener failed on %s's call", record.agent)
