"""What the rest of Fleetwarden hears of and says to the door: a call about to be relayed is
asked of each :class:`Ask` given (a person in chat, the permission rules; none given: every
allowed tool is relayed), and every call ends in one :class:`McpAudit` given to each audit
listener (the ledger, the agent's thread, ``/metrics``). Both are plain lists handed to the
door when the app builds it (:class:`McpHooks`)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

log = logging.getLogger(__name__)

AUDIT_CHARS: Final = 500
"""Characters kept of a call's arguments and of its result in the audit (one line,
redacted, cut in the middle past it)."""


@dataclass(frozen=True, slots=True)
class McpCall:
    """A tool call an agent asks the door for, before it is relayed. ``arguments`` are the
    agent's, hostile text: whoever shows them guards them."""

    agent: str
    server: str
    tool: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an :class:`Ask` answers: relay the call or not, and why in words for the agent
    and the audit ("denied in chat by @ana")."""

    allowed: bool
    why: str = ""


ALLOW: Final = Verdict(True)


class Ask(Protocol):
    """Asked before a tool call is relayed; may take as long as a person takes. Any
    exception it raises denies the call (fail closed)."""

    async def __call__(self, call: McpCall) -> Verdict: ...


class Outcome(enum.StrEnum):
    """How a call ended (the audit's and ``/metrics``' label)."""

    OK = "ok"  # the server answered it
    ERROR = "error"  # the server answered an error, or a tool result marked isError
    REFUSED = "refused"  # the tool is not on the agent's allow-list: refused at the door
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
    a failure's reason, in the words the agent got."""

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


AuditListener = Callable[[McpAudit], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class McpHooks:
    """The listeners the app gives the door: ``asks`` asked in order before each tool call
    (the first that denies wins), ``audits`` told of each call's end."""

    asks: Sequence[Ask] = field(default_factory=tuple)
    audits: Sequence[AuditListener] = field(default_factory=tuple)

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

    async def audit(self, record: McpAudit) -> None:
        """Tell each listener of ``record``; one that fails is logged, the rest still told."""
        for listener in self.audits:
            try:
                await listener(record)
            except Exception:
                log.exception("MCP door: an audit listener failed on %s's call", record.agent)
