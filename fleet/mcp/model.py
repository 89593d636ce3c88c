"""What Fleetwarden knows of an MCP server and of an agent's right to it, as the config
gives them: :class:`McpServer` (reached over streamable HTTP, :class:`HttpServer`, or run
by Fleetwarden over stdio, :class:`StdioServer`) and :class:`McpGrant` (kept with the
other launch types in :mod:`fleet.model`, as an :class:`~fleet.model.AgentSpec` carries
it; re-exported here).

A credential is never a value here: only the name of the environment variable Fleetwarden
reads it from (``*_env``), at the moment it reaches the server, on Fleetwarden's side of
the door."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from fleet.model import McpGrant

__all__ = ["DEFAULT_TIMEOUT", "HttpServer", "McpGrant", "McpServer", "StdioServer"]

DEFAULT_TIMEOUT: Final = 60.0
"""Seconds one call may take at the server before the door answers the agent an error."""


@dataclass(frozen=True, slots=True)
class HttpServer:
    """A server Fleetwarden reaches over MCP's streamable HTTP at ``url``, sending each
    header of ``headers_env`` (header name → the variable its value is read from) and the
    plain ``headers`` (no secret in them: the config refuses one that looks secret)."""

    url: str
    headers_env: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StdioServer:
    """A server Fleetwarden runs itself, outside every sandbox: ``command`` with ``args``,
    its environment the plain ``env`` and, for each of ``env_env``, the variable named
    there read from Fleetwarden's own (the server's variable → Fleetwarden's)."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    env_env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None


@dataclass(frozen=True, slots=True)
class McpServer:
    """One named server of the config's ``mcp:`` section. ``tools``: the only tools any
    agent may see and call (``None``: all the server lists). ``price_per_call``: what one
    call costs, in the config's currency, counted against the run's cap and budgets."""

    name: str
    transport: HttpServer | StdioServer
    tools: frozenset[str] | None = None
    price_per_call: float | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def credential_envs(self) -> frozenset[str]:
        """The variables this server's credentials are read from: never an agent's."""
        if isinstance(self.transport, HttpServer):
            return frozenset(self.transport.headers_env.values())
        return frozenset(self.transport.env_env.values())
