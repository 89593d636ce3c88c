"""The MCP door's roster as the fleet holds it now (:class:`~fleet.mcp.door.routes.McpRoster`): the
config's servers (made at start: a change under ``mcp:`` needs a restart) and each agent's
grants read from its spec at each request, so a ``roster reload`` that changes an agent's
``mcp:`` applies at once, to its open sessions too."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from fleet.mcp.model import McpGrant, McpServer

Grants = Callable[[str], Iterable[McpGrant]]
"""An agent's grants as its current spec has them (none for an agent the roster lacks)."""


class LiveRoster:
    """``servers`` by name; an agent's grants read through ``grants`` at each call."""

    def __init__(self, servers: Mapping[str, McpServer], grants: Grants) -> None:
        self._servers = dict(servers)
        self._grants = grants

    def server(self, name: str) -> McpServer | None:
        return self._servers.get(name)

    def grant(self, agent: str, server: str) -> McpGrant | None:
        if server not in self._servers:
            return None
        return next((g for g in self._grants(agent) if g.server == server), None)

    def names(self) -> frozenset[str]:
        """The servers' names: the only ``server`` labels a count may carry."""
        return frozenset(self._servers)
