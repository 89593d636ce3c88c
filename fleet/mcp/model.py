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
from urllib.parse import quote

from fleet.model import McpGrant

__all__ = [
    "DEFAULT_TIMEOUT",
    "HeldToken",
    "HttpServer",
    "McpGrant",
    "McpServer",
    "OAuthClient",
    "StdioServer",
]

DEFAULT_TIMEOUT: Final = 60.0
"""Seconds one call may take at the server before the door answers the agent an error."""


@dataclass(eq=False, slots=True, weakref_slot=True)
class HeldToken:
    """The OAuth access token Fleetwarden holds for one server, in memory only (never
    written to disk nor logged): its value, until when it is good (monotonic seconds),
    and the token endpoint found for it when the config names none. Shared by every
    session with the server; :mod:`fleet.mcp.upstream.oauth` fills and renews it."""

    value: str | None = None
    good_until: float = 0.0
    token_url: str | None = None
    former: tuple[str, ...] = ()
    """The tokens it replaced, the latest few: maybe good still, so still scrubbed."""


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """OAuth client credentials Fleetwarden holds for a server: the variables its client
    id and secret are read from, the token endpoint (``None``: found from the server's
    protected-resource metadata), the scope asked for, and the token held now."""

    client_id_env: str
    client_secret_env: str
    token_url: str | None = None
    scope: str | None = None
    held: HeldToken = field(default_factory=HeldToken, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class HttpServer:
    """A server Fleetwarden reaches over MCP's streamable HTTP at ``url``, sending each
    header of ``headers_env`` (header name → the variable its value is read from) and the
    plain ``headers`` (no secret in them: the config refuses one that looks secret), and
    with ``oauth``, an access token it gets with the client-credentials grant."""

    url: str
    headers_env: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    oauth: OAuthClient | None = None


@dataclass(frozen=True, slots=True)
class StdioServer:
    """A server Fleetwarden runs itself: ``command`` with ``args``, its environment the
    plain ``env`` and, for each of ``env_env``, the variable named there read from
    Fleetwarden's own (the server's variable → Fleetwarden's); ``confined``: in a sandbox
    of its own (:mod:`fleet.mcp.upstream.confined`), its network the host's unless
    ``locked``."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    env_env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    confined: bool = True
    locked: bool = False


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
            oauth = self.transport.oauth
            held = () if oauth is None else (oauth.client_id_env, oauth.client_secret_env)
            return frozenset((*self.transport.headers_env.values(), *held))
        return frozenset(self.transport.env_env.values())


def mcp_path(agent: str, server: str) -> str:
    """Where ``agent`` reaches ``server`` on the heartbeat endpoint: the path of its URL."""
    return f"/mcp/{quote(agent, safe='')}/{quote(server, safe='')}"
