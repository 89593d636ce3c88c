"""An HTTP server's ``oauth:`` in the config's ``mcp:`` section (:class:`McpOAuthEntry`):
OAuth client credentials Fleetwarden holds and gets the server's access token with (the
client-credentials grant, :mod:`fleet.mcp.upstream.oauth`). The client id and secret come only from
variables of Fleetwarden's environment the entry names, never from the file; the token
endpoint is ``https://`` (``http://`` only on this machine's loopback), and takes no
credential in its address. Without ``token_url``, only an endpoint on the server's own
origin is used (:mod:`fleet.mcp.upstream.oauth`)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from fleet.destinations import is_loopback
from fleet.mcp.config.heuristics import has_control, secret_name
from fleet.mcp.model import OAuthClient
from fleet.schema import EnvVarName

_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*")
"""RFC 6749 §3.3: scope tokens of printable ASCII but ``"`` and ``\\``, one space apart."""


class McpOAuthEntry(BaseModel):
    """OAuth client credentials for an HTTP MCP server, held by Fleetwarden: it gets an
    access token with them (the client-credentials grant), keeps it in memory until it
    expires, and sends it to the server; no agent ever sees the token or the secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id_env: EnvVarName = Field(
        description="The variable of Fleetwarden's environment the OAuth client id is read "
        "from. No agent may hold the variable."
    )
    client_secret_env: EnvVarName = Field(
        description="The variable of Fleetwarden's environment the OAuth client secret is "
        "read from. No agent may hold the variable."
    )
    token_url: str | None = Field(
        default=None,
        description=(
            "The authorization server's token endpoint, e.g. "
            "`https://auth.example.com/oauth/token` (`http://` only on this machine's "
            "loopback). Default: found from the server's protected-resource metadata, and "
            "used only on the server's own origin (scheme, host and port): an endpoint "
            "elsewhere is refused until given here."
        ),
    )
    scope: str | None = Field(
        default=None,
        description="The scope asked for, space-separated, e.g. `mcp:tools`. Default: none "
        "asked (the authorization server's default).",
    )

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = token_url_problem(value)
        if problem is not None:
            raise PydanticCustomError("oauth_token_url", problem)
        return value

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str | None) -> str | None:
        if value is not None and not _SCOPE.fullmatch(value):
            raise PydanticCustomError(
                "oauth_scope",
                "scope is space-separated words of printable characters (no quote, "
                "backslash or line break), e.g. 'mcp:tools read'",
            )
        return value

    def client(self) -> OAuthClient:
        """The runtime's client credentials, no token held yet."""
        return OAuthClient(self.client_id_env, self.client_secret_env, self.token_url, self.scope)


def token_url_problem(value: str) -> str | None:
    """Why ``value`` cannot be a token endpoint, or ``None``."""
    if has_control(value) or " " in value:
        return "token_url holds a space or a control character: write it on one line"
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "token_url is the token endpoint's address, such as https://auth.example.com/token"
    if parts.scheme == "http" and not is_loopback(parts.hostname, under_localhost=False):
        return (
            f"token_url would send the client secret unencrypted to {parts.hostname}: use "
            "https:// (http:// is for an endpoint on this machine's loopback)"
        )
    if parts.username or parts.password or parts.fragment:
        return "token_url takes no credential (user@) and no fragment (#…)"
    if any(secret_name(key) for key, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return (
            "token_url looks like it holds a credential in its query: the client id and "
            "secret come from client_id_env and client_secret_env, never from the file"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return f"token_url's port is not a number from 1 to 65535: {parts.netloc}"
    return None
