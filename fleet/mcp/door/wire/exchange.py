"""One request an agent made through the door, from its POST to its answer: what the door
relays back on its way (the server's progress on it, and — on a streamed answer — what else
the server says meanwhile), then the answer itself; and what the audit keeps of it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Final

from fleet.mcp.hooks import AUDIT_CHARS, McpAudit, Outcome
from fleet.mcp.wire import MAX_MESSAGE, JSONRPCRequest, param
from fleet.redaction.guard import guarded

AUDITED: Final = {
    "tools/call": "name",
    "resources/read": "uri",
    "resources/subscribe": "uri",
    "prompts/get": "name",
    "completion/complete": "ref",
}
"""The methods that do something at the server, each audited, and the parameter that names
what they do it to (a completion's ``ref``: the prompt's name or the resource template's
URI it completes an argument of)."""
COMPLETION: Final = "completion/complete"
RELAYED: Final = 64
"""Messages of the server's waiting to be sent on one answer's stream at most."""
RELAYED_BYTES: Final = 2 * MAX_MESSAGE
"""Bytes of them waiting at most: with :data:`RELAYED` of up to a megabyte each, a server
that talks on and on to an agent slow to read would otherwise have the door hold 64 MB
for each of the agent's requests in flight."""


@dataclass(frozen=True, slots=True)
class Answer:
    """How an exchange ended: the message relayed (``None``: none, the agent cancelled),
    its outcome, the server's result (the audit keeps it redacted, made so once the answer
    is on its way: :func:`audit_of`), and why (a refusal's words)."""

    message: bytes | None
    outcome: Outcome
    result: object = None
    why: str = ""


@dataclass(eq=False, slots=True)
class Exchange:
    """A request of the agent's in flight. ``streamed``: its answer is an event stream, so
    the server's other messages may ride it; ``size``: the bytes the agent posted."""

    request: JSONRPCRequest
    started: float
    size: int
    streamed: bool
    _out: asyncio.Queue[bytes | Answer] = field(default_factory=asyncio.Queue)
    answer: Answer | None = None
    timer: asyncio.TimerHandle | None = None
    withdrawn: bool = False  # the agent cancelled it before it was relayed
    _waiting: int = 0  # bytes of the messages relayed and not yet sent
    _taken: bytes | None = None  # a message ``first`` took: the stream's first

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def audited(self) -> bool:
        return self.method in AUDITED

    @property
    def name(self) -> str:
        """What the call is to: its tool's name, its resource's URI, its prompt's name."""
        key = AUDITED.get(self.method)
        value = param(self.request, key) if key is not None else None
        if isinstance(value, dict):  # a completion's reference
            value = value.get("name") if value.get("type") == "ref/prompt" else value.get("uri")
        return value if isinstance(value, str) else ""

    @property
    def arguments(self) -> object:
        """What the call is given, as an ask and the audit show it: a tool's or a prompt's
        ``arguments``; a completion's argument, its reference and its context."""
        if self.method == COMPLETION:
            params = self.request.params or {}
            return {k: v for k, v in params.items() if k in ("ref", "argument", "context")}
        return param(self.request, "arguments")

    @property
    def progress_token(self) -> str | int | None:
        token = param(self.request, "_meta", "progressToken")
        return token if isinstance(token, str | int) and not isinstance(token, bool) else None

    def relay(self, message: bytes) -> None:
        """Send ``message`` (the server's, about this request) before the answer; past
        :data:`RELAYED` messages or :data:`RELAYED_BYTES` bytes not yet sent, dropped (an
        agent slow to read, a server that talks on and on)."""
        if self.answer is not None or self._out.qsize() >= RELAYED:
            return
        if self._waiting + len(message) > RELAYED_BYTES:
            return
        self._waiting += len(message)
        self._out.put_nowait(message)

    def end(self, answer: Answer) -> bool:
        """End with ``answer``; whether it ended here (not already)."""
        if self.answer is not None:
            return False
        self.answer = answer
        if self.timer is not None:
            self.timer.cancel()
        self._out.put_nowait(answer)
        return True

    async def first(self, within: float) -> Answer | None:
        """The answer, when it is the first thing to send and comes within ``within``
        seconds; else ``None``: :meth:`messages` sends all in order. Awaited on the queue
        itself, not through a task of its own: the handler has the answer in the loop's
        next turn, before any task started as it ended (its call's audit) runs."""
        if self._taken is not None:
            return None
        try:
            async with asyncio.timeout(within):
                item = await self._out.get()  # on the timeout, nothing taken
        except TimeoutError:
            return None
        if isinstance(item, Answer):
            return item
        self._taken = item
        return None

    async def messages(self) -> AsyncGenerator[bytes, None]:
        """What to send the agent, in order, the answer last (nothing for a cancelled one)."""
        taken, self._taken = self._taken, None
        if taken is not None:
            self._waiting -= len(taken)
            yield taken
        while True:
            item = await self._out.get()
            if isinstance(item, Answer):
                if item.message is not None:
                    yield item.message
                return
            self._waiting -= len(item)
            yield item

    async def ended(self) -> Answer:
        """The answer, once there is one (for an answer sent whole, not streamed)."""
        while True:
            item = await self._out.get()
            if isinstance(item, Answer):
                return item


GIVEN_UP: Final = frozenset({Outcome.TIMEOUT, Outcome.CANCELLED})
"""How a relayed request ends that the server may still answer."""


def audit_of(
    exchange: Exchange,
    answer: Answer,
    agent: str,
    server: str,
    seconds: float,
    cost: float | None,
    redact: Callable[[str], str],
) -> McpAudit:
    """The audit record of ``exchange``'s call, ended by ``answer`` after ``seconds`` at the
    server; its name, arguments and result redacted."""
    return McpAudit(
        agent=agent,
        server=server,
        method=exchange.method,
        name=guarded(exchange.name, redact),
        outcome=answer.outcome,
        seconds=seconds,
        bytes_in=exchange.size,
        bytes_out=len(answer.message or b""),
        arguments=audit_text(exchange.arguments or {}, redact),
        result="" if answer.result is None else audit_text(answer.result, redact),
        why=answer.why,
        cost_usd=cost,
    )


def audit_text(value: object, redact: Callable[[str], str]) -> str:
    """``value`` as one redacted line of at most :data:`AUDIT_CHARS` for the audit."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return guarded(text, redact, AUDIT_CHARS)
