"""The credentials the door holds for MCP servers: read from Fleetwarden's environment at
the moment a server is reached (an HTTP server's headers, a stdio server's environment),
known to the redactor (:class:`McpSecrets`), and scrubbed out of everything relayed to an
agent (:class:`Scrub`) — a server that echoes the header it got gives the agent a label,
never the value, in whatever form the redactor knows (:mod:`fleet.redaction.known`:
escaped, percent-encoded, in hex or base64, a value too short to hunt where its header or
variable names it)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final

from fleet.errors import FleetwardenError
from fleet.mcp.model import HeldToken, HttpServer, McpServer, StdioServer
from fleet.redaction.known import Secret
from fleet.redaction.redactor import label, merged
from fleet.redaction.values import KnownSet

_SCHEMES: Final = ("bearer ", "basic ", "token ")


class MissingCredential(FleetwardenError):
    """A variable a server's credential is read from is not set in Fleetwarden's
    environment (said by name, never by value)."""


def held_headers(server: HttpServer, environ: Mapping[str, str]) -> dict[str, str]:
    """The headers Fleetwarden sends ``server``: the plain ones, then each held one read
    from its variable now."""
    headers = dict(server.headers)
    for header, variable in server.headers_env.items():
        headers[header] = read_variable(variable, environ)
    return headers


def stdio_env(server: StdioServer, environ: Mapping[str, str]) -> dict[str, str]:
    """What a stdio server's environment adds to the SDK's safe few (``PATH``, ``HOME``…):
    the plain ``env``, then each of ``env_env`` read from its variable now."""
    env = dict(server.env)
    for name, variable in server.env_env.items():
        env[name] = read_variable(variable, environ)
    return env


def read_variable(variable: str, environ: Mapping[str, str]) -> str:
    """The credential in ``variable`` of ``environ``; :class:`MissingCredential` when unset."""
    value = environ.get(variable)
    if not value:
        raise MissingCredential(
            f"the environment variable {variable} is not set: set it in Fleetwarden's "
            "environment (its service's EnvironmentFile) and restart"
        )
    return value


def secrets_of(servers: Iterable[McpServer], environ: Mapping[str, str]) -> HeldSecrets:
    """Every credential of ``servers`` set now, each labelled with its variable; a header's
    ``Bearer <token>`` also as the token alone (a server may echo just that); and the
    OAuth access tokens held for them, as they are whenever asked."""
    found: list[Secret] = []
    servers = list(servers)
    for server in servers:
        places = _places_of(server)
        for variable in sorted(server.credential_envs):
            value = environ.get(variable, "").strip()
            if not value:
                continue
            what = f"MCP credential {variable}"
            named = (variable, *places.get(variable, ()))
            found.append(Secret(value, what, named))
            scheme = next((s for s in _SCHEMES if value.lower().startswith(s)), None)
            if scheme is not None and value[len(scheme) :].strip():
                found.append(Secret(value[len(scheme) :].strip(), what, named))
    return HeldSecrets(tuple(found), _tokens_of(servers))


def _places_of(server: McpServer) -> dict[str, tuple[str, ...]]:
    """The names each of ``server``'s variables is given under: the header it is sent in,
    the environment variable a stdio server reads it from."""
    given = (
        server.transport.headers_env
        if isinstance(server.transport, HttpServer)
        else server.transport.env_env
    )
    places: dict[str, tuple[str, ...]] = {}
    for name, variable in given.items():
        places[variable] = (*places.get(variable, ()), name)
    return places


def _tokens_of(servers: Iterable[McpServer]) -> tuple[tuple[HeldToken, str], ...]:
    return tuple(
        (server.transport.oauth.held, f"MCP OAuth token of {server.name}")
        for server in servers
        if isinstance(server.transport, HttpServer) and server.transport.oauth is not None
    )


class HeldSecrets:
    """Servers' credentials: those read from the environment (``fixed``: it does not
    change), then the OAuth access tokens held for them now (renewed as they expire)."""

    def __init__(
        self, fixed: tuple[Secret, ...], tokens: tuple[tuple[HeldToken, str], ...] = ()
    ) -> None:
        self.fixed = fixed
        self._tokens = tokens

    def live(self) -> list[Secret]:
        """The access tokens held now, and the few they replaced."""
        return [
            Secret(value, what)
            for held, what in self._tokens
            for value in (held.value, *held.former)
            if value
        ]

    def __iter__(self) -> Iterator[Secret]:
        yield from self.fixed
        yield from self.live()

    def known_secrets(self) -> Iterable[Secret]:
        """All of them now (a :class:`fleet.redaction.known.SecretSource`)."""
        return list(self)


def oauth_tokens(servers: Iterable[McpServer]) -> HeldSecrets:
    """The OAuth access tokens held for ``servers``, as they are whenever asked: a source
    of the app's redactor (the variables' values are its own already)."""
    return HeldSecrets((), _tokens_of(servers))


class McpSecrets:
    """The MCP servers' credentials as a source of the app's redactor
    (:class:`fleet.redaction.known.SecretSource`): those of ``servers``, read from
    ``environ`` once (the environment does not change), and their OAuth tokens as held
    at each redaction."""

    def __init__(self, servers: Iterable[McpServer], environ: Mapping[str, str]) -> None:
        self._secrets = secrets_of(servers, environ)

    def known_secrets(self) -> Iterable[Secret]:
        return list(self._secrets)


class Scrub:
    """Takes the held credentials' values out of text relayed to an agent, in every form
    the redactor knows (:class:`fleet.redaction.values.KnownValues`: as written, escaped as
    JSON or markdown, percent-encoded, in base64 or hex, cut at a line's edge; one too
    short to hunt where it is named). A label replaces each, covering every escape that
    spelled it; the label has no quote nor backslash, so a JSON text stays JSON where the
    value was inside a string (the caller checks it still parses)."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        self._live = secrets if isinstance(secrets, HeldSecrets) else None
        fixed = secrets.fixed if isinstance(secrets, HeldSecrets) else tuple(secrets)
        self._fixed = frozenset(fixed)
        self._known = KnownSet().updated(self._fixed)

    def __call__(self, text: str) -> str:
        if self._live is not None:  # an OAuth token renewed since: known from now on
            self._known = self._known.updated(self._fixed | frozenset(self._live.live()))
        spans = self._known.spans(text)
        if not spans:
            return text
        out: list[str] = []
        at = 0
        for start, end, what in merged(spans):
            out += (text[at:start], label(what))
            at = end
        out.append(text[at:])
        return "".join(out)

    def json(self, raw: bytes) -> bytes | None:
        """``raw`` (a JSON message) scrubbed; ``None`` when what is left is no longer JSON
        (a value stood across its structure: the message is not relayed)."""
        return scrubbed_json(self, raw)


def scrubbed_json(scrub: Callable[[str], str], raw: bytes) -> bytes | None:
    """``raw`` (a JSON message) with ``scrub`` applied to its text; ``None`` when what is
    left is no longer JSON (a value stood across its structure: the message is not
    relayed)."""
    text = raw.decode("utf-8", "replace")
    scrubbed = scrub(text)
    if scrubbed == text:
        return raw
    try:
        json.loads(scrubbed)
    except ValueError:
        return None
    return scrubbed.encode()
