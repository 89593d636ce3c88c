"""The calls through the MCP door told as they end (audit listeners,
:data:`fleet.mcp.hooks.AuditListener`): a short line in the agent's thread
(:func:`bot.render.agents.mcp.audit_line`, hostile words guarded there), and a count for
``/metrics`` whose labels are the config's server names and the door's fixed outcomes only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from bot.render.agents.mcp import audit_line
from fleet.mcp.hooks import McpAudit, Outcome
from fleet.notices import Notice

OTHER: Final = "(other)"
"""The ``server`` label of a call naming no server of the config (none reaches the door)."""
_OUTCOMES: Final = frozenset(o.value for o in Outcome)
CLOSE_SECONDS: Final = 10.0
"""How long :meth:`McpThreadLines.close` waits for the lines still to be posted."""
log = logging.getLogger(__name__)

Post = Callable[[Notice], Awaitable[object]]


class McpThreadLines:
    """Each call, one line in its agent's thread (a feed notice: never the home room),
    with its price when the door billed it. Lines are batched as the agent feed batches an
    agent's tool lines: the calls that end within ``batch`` seconds of the first go out as
    one message (at most ``most`` lines, then how many more), posts about one agent at
    least ``gap`` apart, so an agent looping calls never floods a chat's rate limits. A
    line is queued, never awaited: the ledger and the count do not wait on chat."""

    def __init__(self, post: Post, *, batch: float = 2.0, gap: float = 2.0, most: int = 10) -> None:
        self._post = post
        self._batch, self._gap, self._most = batch, gap, most
        self._pending: dict[str, list[str]] = {}
        self._more: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        self._closing = asyncio.Event()

    async def __call__(self, audit: McpAudit) -> None:
        if self._closed:
            return
        lines = self._pending.setdefault(audit.agent, [])
        if len(lines) < self._most:  # bounded however fast calls come: the rest counted
            lines.append(audit_line(audit, audit.cost_usd))
        else:
            self._more[audit.agent] = self._more.get(audit.agent, 0) + 1
        if audit.agent not in self._tasks:
            self._tasks[audit.agent] = asyncio.create_task(self._flush(audit.agent))

    async def _flush(self, agent: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending.get(agent):
                since = loop.time() - self._last.get(agent, float("-inf"))
                with contextlib.suppress(TimeoutError):  # no wait once close() is called
                    await asyncio.wait_for(
                        self._closing.wait(), max(self._batch, self._gap - since)
                    )
                await self._send(agent)
                self._last[agent] = loop.time()
        finally:
            self._tasks.pop(agent, None)

    async def _send(self, agent: str) -> None:
        shown, more = self._pending.pop(agent, []), self._more.pop(agent, 0)
        if not shown:
            return
        if more > 0:
            shown.append(f"… and {more} more MCP calls (`runs {agent}` lists them)")
        notice = Notice("\n".join(shown), agents=(agent,), home_too=False, feed=True)
        try:
            await self._post(notice)
        except Exception:
            log.exception("MCP door: %s's call lines were not posted", agent)

    async def drain(self) -> None:
        """Wait until every line queued so far is posted."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        """Post what waits at once (a post under way finished, not cut: its lines would be
        lost); later calls are no longer told (the chat is stopping)."""
        self._closed = True
        self._closing.set()
        with contextlib.suppress(TimeoutError):  # a chat that never answers holds no stop
            await asyncio.wait_for(self.drain(), CLOSE_SECONDS)


class McpCounted:
    """Each call counted by ``count(server, outcome)``, the server one of ``servers``."""

    def __init__(self, count: Callable[[str, str], None], servers: frozenset[str]) -> None:
        self._count = count
        self._servers = servers

    async def __call__(self, audit: McpAudit) -> None:
        server = audit.server if audit.server in self._servers else OTHER
        outcome = audit.outcome.value if audit.outcome.value in _OUTCOMES else OTHER
        self._count(server, outcome)
