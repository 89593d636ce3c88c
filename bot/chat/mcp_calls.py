"""The calls through the MCP door told as they end (audit listeners,
:data:`fleet.mcp.hooks.AuditListener`): a short line in the agent's thread
(:func:`bot.render.mcp.audit_line`, hostile words guarded there), and a count for
``/metrics`` whose labels are the config's server names and the door's fixed outcomes only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from bot.render.mcp import audit_line
from fleet.mcp.hooks import McpAudit, Outcome
from fleet.notices import Notice

OTHER: Final = "(other)"
"""The ``server`` label of a call naming no server of the config (none reaches the door)."""
_OUTCOMES: Final = frozenset(o.value for o in Outcome)

Post = Callable[[Notice], Awaitable[object]]


class McpThreadLines:
    """Each call, one line in its agent's thread (a feed notice: never the home room),
    with its price when the door billed it."""

    def __init__(self, post: Post) -> None:
        self._post = post

    async def __call__(self, audit: McpAudit) -> None:
        line = audit_line(audit, audit.cost_usd)
        await self._post(Notice(line, agents=(audit.agent,), home_too=False, feed=True))


class McpCounted:
    """Each call counted by ``count(server, outcome)``, the server one of ``servers``."""

    def __init__(self, count: Callable[[str, str], None], servers: frozenset[str]) -> None:
        self._count = count
        self._servers = servers

    async def __call__(self, audit: McpAudit) -> None:
        server = audit.server if audit.server in self._servers else OTHER
        outcome = audit.outcome.value if audit.outcome.value in _OUTCOMES else OTHER
        self._count(server, outcome)
