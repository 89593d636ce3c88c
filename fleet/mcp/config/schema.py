"""The config file's ``mcp:`` section: the MCP servers agents may use, by name
(:class:`McpServerEntry`).

A server is reached over streamable HTTP (``url``; its credential sent in the headers of
``headers_env``, each read from a variable of Fleetwarden's environment, or got with the
OAuth client credentials of ``oauth``, :mod:`fleet.mcp.config.oauth_entry`) or run by
Fleetwarden over stdio (``command`` and ``args``; its credential in the variables of
``env_env``), never inside an agent's sandbox. A plain ``headers`` or ``env`` value, an
``args`` item or a ``url`` that looks like a credential is refused: no secret is ever
written in the file, and none reaches an agent. :func:`server_of` turns an entry into
:mod:`fleet.mcp.model`'s :class:`~fleet.mcp.model.McpServer`; the names are
:mod:`fleet.mcp.config.names`', an agent's grants :mod:`fleet.mcp.config.grants`'.

What needs more than one entry — an agent's server that the section lacks, a grant's tool
off the server's allow-list, a credential's variable in an agent's ``secret_env`` — is
checked across entries (:mod:`bot.config.mcp.checks`, :mod:`bot.config.checks.doors`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fleet.destinations import is_loopback
from fleet.mcp.config.heuristics import (
    has_control,
    secret_arg,
    secret_header,
    secret_variable,
    url_problem,
)
from fleet.mcp.config.names import Tools
from fleet.mcp.config.oauth_entry import McpOAuthEntry
from fleet.mcp.config.refusals import (
    control_in,
    misplaced,
    oauth_twice,
    raise_at_keys,
    raise_each,
    secret_arg_error,
    secret_env_error,
    secret_header_error,
    spelled_twice,
    twice,
)
from fleet.mcp.model import DEFAULT_TIMEOUT, HttpServer, McpServer, StdioServer
from fleet.redaction.shapes import credential_shaped, shown_key
from fleet.schema import (
    ENV_KEY_PATTERN,
    EnvVarName,
    Seconds,
    WorkDir,
    expand_path,
    schema_context,
)

HEADER_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9-]{0,63}"
MAX_TIMEOUT = 3600.0

_HEADER = re.compile(HEADER_NAME_PATTERN)
_ENV_KEY = re.compile(ENV_KEY_PATTERN)
_DOOR_HEADERS = frozenset(
    {"host", "content-length", "content-type", "accept", "connection", "transfer-encoding"}
    | {"upgrade", "te", "mcp-session-id", "mcp-protocol-version", "last-event-id"}
)
"""Headers the MCP door itself sends: HTTP's framing and MCP's streamable transport."""


def _header_name(value: str) -> str:
    if not _HEADER.fullmatch(value):
        raise PydanticCustomError(
            "header_name",
            "{name} is not an HTTP header name (letters, digits and '-', e.g. Authorization)",
            {"name": repr(shown_key(value)[:40])},
        )
    if credential_shaped(value):
        raise PydanticCustomError(
            "header_name_secret",
            "this header's name looks like a credential, and secrets never go in the config "
            "file: name the header (e.g. Authorization) and read its value from a variable "
            "(headers_env: {example}); the name is not shown",
            {"example": "{Authorization: VARIABLE}"},
        )
    if value.lower() in _DOOR_HEADERS:
        raise PydanticCustomError(
            "header_door",
            "{name} is set by the MCP door on each request (as HTTP and MCP's transport need "
            "it), not by the config: remove it",
            {"name": value},
        )
    return value


def _stdio_env_key(value: str) -> str:
    if not _ENV_KEY.fullmatch(value):
        raise PydanticCustomError(
            "env_key",
            "{name} is not an environment variable name: use letters, digits and '_', not "
            "starting with a digit",
            {"name": repr(shown_key(value)[:40])},
        )
    if credential_shaped(value):
        raise PydanticCustomError(
            "env_key_secret",
            "this variable's name looks like a credential, and secrets never go in the config "
            "file: name the variable (e.g. API_TOKEN) and read its value from one of "
            "Fleetwarden's (env_env: {example}); the name is not shown",
            {"example": "{API_TOKEN: VARIABLE}"},
        )
    return value


def _price(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise PydanticCustomError("price", "must be a number of dollars, 0 or more")
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]
StdioEnvKey = Annotated[str, AfterValidator(_stdio_env_key)]
Dollars = Annotated[float, Field(strict=True), AfterValidator(_price)]


class McpServerEntry(BaseModel):
    """An MCP server agents may use: reached over streamable HTTP (`url`) or run by
    Fleetwarden over stdio (`command`), one of them. Fleetwarden holds its credential and
    relays each call; an agent reaches it only through its MCP door at `/mcp/NAME`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        default=None,
        description=(
            "An HTTP server: its streamable HTTP endpoint, e.g. `https://mcp.example.com/mcp` "
            "(`http://` only on this machine's loopback when it takes a credential)."
        ),
    )
    headers_env: dict[HeaderName, EnvVarName] = Field(
        default_factory=dict,
        description=(
            "An HTTP server's credential headers: header name → the variable of "
            "Fleetwarden's environment its whole value is read from, e.g. "
            "`{Authorization: LINEAR_AUTH}` with `LINEAR_AUTH='Bearer …'`. No agent may hold "
            "the variable."
        ),
    )
    headers: dict[HeaderName, str] = Field(
        default_factory=dict,
        description=(
            "An HTTP server's other headers, as written (e.g. `{X-Team: web}`). A header "
            "that looks like a credential (`Authorization`, `…-Key`, a token's shape) is "
            "refused: use `headers_env`."
        ),
    )
    oauth: McpOAuthEntry | None = Field(
        default=None,
        description=(
            "An HTTP server's OAuth client credentials, held by Fleetwarden: it gets an "
            "access token with them (the client-credentials grant), keeps it in memory until "
            "it expires and sends it as the `Authorization` header, e.g. `{token_url: "
            "https://auth.example.com/token, client_id_env: TRACKER_ID, client_secret_env: "
            "TRACKER_SECRET}`."
        ),
    )
    command: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "A stdio server: the program Fleetwarden runs, in a sandbox of its own (a name on "
            "its `PATH`, or a path; never through a shell), e.g. `npx`."
        ),
    )
    args: tuple[str, ...] = Field(
        default=(), description="A stdio server's arguments, e.g. `[-y, '@acme/mcp-server']`."
    )
    env: dict[StdioEnvKey, str] = Field(
        default_factory=dict,
        description=(
            "A stdio server's plain environment variables, name: value. A name that looks "
            "like a secret is refused: use `env_env`."
        ),
    )
    env_env: dict[StdioEnvKey, EnvVarName] = Field(
        default_factory=dict,
        description=(
            "A stdio server's credentials: its variable → the variable of Fleetwarden's "
            "environment its value is read from, e.g. `{GITHUB_TOKEN: FW_GITHUB_MCP}`. No "
            "agent may hold the variable."
        ),
    )
    sandbox: Literal["bwrap", "none"] = Field(
        default="bwrap",
        description=(
            "A stdio server's confinement: `bwrap` (the default) runs it in a bubblewrap "
            "sandbox of its own — its own user when Fleetwarden is root, no view of the "
            "state dir, the config's folder or any agent's workdir; `none` runs it as "
            "Fleetwarden's user with the host's view (refused under `enforce: strict`)."
        ),
    )
    egress: Literal["open", "locked"] = Field(
        default="open",
        description=(
            "A confined stdio server's network: `open` (the default: the host's, to reach "
            "its service) or `locked` (none at all, loopback of its own only)."
        ),
    )
    cwd: WorkDir | None = Field(
        default=None,
        description=(
            "A stdio server's working directory; it must exist. Relative paths are resolved "
            "against the config file's directory. Default: none given."
        ),
    )
    tools: Tools = Field(
        default=None,
        description=(
            "The only tools of the server any agent may see and call (an agent's grant may "
            "narrow them further); a call to another is refused at the door. Default: every "
            "tool the server lists."
        ),
    )
    price_per_call: Dollars | None = Field(
        default=None,
        description=(
            "What one call costs, in US dollars, counted against the run's cap and the "
            "budgets like model spend. Default: calls are free."
        ),
    )
    timeout: Seconds = Field(
        default=DEFAULT_TIMEOUT,
        le=MAX_TIMEOUT,
        description=(
            "Seconds one call may take at the server (at most 3600); past it the door "
            "answers the agent an error and the run goes on."
        ),
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = url_problem(value)
        if problem is not None:
            raise PydanticCustomError("mcp_url", problem)
        return value

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, value: dict[str, str]) -> dict[str, str]:
        found = []
        for name, text in value.items():
            if has_control(text):
                found.append((name, control_in(f"header {name}'s value")))
            elif secret_header(name, text):
                found.append((name, secret_header_error(name)))
        raise_each("headers", found)
        return value

    @field_validator("env")
    @classmethod
    def _plain_env(cls, value: dict[str, str]) -> dict[str, str]:
        found = [
            (name, secret_env_error(name))
            for name, text in value.items()
            if secret_variable(name) or credential_shaped(f"{name}={text}")
        ]
        raise_each("env", found)
        return value

    @field_validator("args")
    @classmethod
    def _plain_args(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        found = [
            (index, secret_arg_error(index))
            for index, arg in enumerate(value)
            if secret_arg(value[index - 1] if index else None, arg)
        ]
        raise_each("args", found)
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and credential_shaped(value):
            raise PydanticCustomError(
                "secret_command",
                "command looks like a credential, not a program: name the program (e.g. npx) "
                "and give the server its credential in a variable (env_env: {example}); the "
                "value is not shown",
                {"example": "{NAME: VARIABLE}"},
            )
        if value is None or "/" not in value:
            return value  # a program on PATH
        return str(expand_path(Path(value), schema_context(info)))

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerEntry:
        if (self.url is None) == (self.command is None):
            raise PydanticCustomError(
                "mcp_transport",
                "give url (a server reached over HTTP) or command (a server Fleetwarden runs "
                "over stdio), one of them",
            )
        found: list[tuple[str | int, PydanticCustomError]] = []
        for field, plain, held, kind, fold in (
            ("headers", self.headers, self.headers_env, "header", str.lower),  # any case
            ("env", self.env, self.env_env, "variable", str),
        ):
            folded = {fold(h) for h in held}
            found += [(f"{field}.{key}", twice(kind, key)) for key in plain if fold(key) in folded]
        for field, headers in (("headers_env", self.headers_env), ("headers", self.headers)):
            first: dict[str, str] = {}
            for key in headers:
                if key.lower() in first:
                    found.append((f"{field}.{key}", spelled_twice(key, first[key.lower()])))
                first.setdefault(key.lower(), key)
        http = {"headers_env": self.headers_env, "headers": self.headers, "oauth": self.oauth}
        if self.oauth is not None:
            found += [
                (f"{field}.{key}", oauth_twice(key))
                for field, held in (("headers_env", self.headers_env), ("headers", self.headers))
                for key in held
                if key.lower() == "authorization"
            ]
        stdio = {
            "args": self.args,
            "env": self.env,
            "env_env": self.env_env,
            "cwd": self.cwd,
            "sandbox": "sandbox" in self.model_fields_set,
            "egress": "egress" in self.model_fields_set,
        }
        wrong = http if self.command is not None else stdio
        kind, other = ("stdio", "url") if self.command is not None else ("HTTP", "command")
        found += [(key, misplaced(key, kind, other)) for key, value in wrong.items() if value]
        raise_at_keys(found)
        if self.url is not None and (self.headers_env or self.oauth):
            host = urlsplit(self.url).hostname or ""
            if urlsplit(self.url).scheme == "http" and not is_loopback(host, under_localhost=False):
                raise PydanticCustomError(
                    "mcp_plain_http",
                    "the credential of {key} would cross the network unencrypted to "
                    "{host}: use an https:// url (http:// is for a server on this machine's "
                    "loopback)",
                    {"host": host, "key": "headers_env" if self.headers_env else "oauth"},
                )
        return self


def server_of(name: str, entry: McpServerEntry) -> McpServer:
    """The runtime server of the ``mcp:`` entry ``name``."""
    transport: HttpServer | StdioServer
    if entry.url is not None:
        oauth = None if entry.oauth is None else entry.oauth.client()
        transport = HttpServer(entry.url, dict(entry.headers_env), dict(entry.headers), oauth)
    elif entry.command is not None:
        transport = StdioServer(
            entry.command,
            entry.args,
            dict(entry.env),
            dict(entry.env_env),
            None if entry.cwd is None else str(entry.cwd),
            confined=entry.sandbox == "bwrap",
            locked=entry.egress == "locked",
        )
    else:  # the schema gives every entry one of them
        raise ValueError(f"MCP server {name} has neither url nor command")
    return McpServer(
        name,
        transport,
        None if entry.tools is None else frozenset(entry.tools),
        entry.price_per_call,
        entry.timeout,
    )
