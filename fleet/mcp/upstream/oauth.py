"""OAuth client credentials Fleetwarden holds for an HTTP server (``oauth:`` of its entry):
the access token got with the client-credentials grant (RFC 6749 §4.4), kept in memory
(:class:`~fleet.mcp.model.HeldToken`, shared by every session with the server) until it
expires, renewed then — or at once when the server answers 401 — and sent upstream as
``Authorization: Bearer``. The agent never sees it: it is never in what the door relays
(:class:`fleet.mcp.upstream.credentials.Scrub` knows it), nor on disk, nor in a log line.

The token endpoint is the config's ``token_url``, or found as MCP's authorization spec
says: the server's protected-resource metadata (RFC 9728) names its authorization server,
whose metadata (RFC 8414) names the endpoint — the SDK's discovery addresses and metadata
types. An endpoint found so is used only on the server's own origin (its scheme, host and
port): the metadata is the server's word, and a hostile server would otherwise decide
where the client secret goes; one elsewhere is refused, the operator told to pin
``token_url``. The client authenticates with HTTP Basic (``client_secret_basic``), to an
``https://`` endpoint only (``http://`` only on loopback). No redirect is followed.

**Why not the SDK's ``ClientCredentialsOAuthProvider``.** It gets a token only after the
server has refused a request (each session's first, and again at each expiry: the grant
gives no refresh token), always runs discovery first (a configured ``token_url`` is not
among its inputs, and without an issuer it warns that it is deprecated), and logs its
failures with their whole text. This is the small part of it Fleetwarden needs, with its
own words for a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx2
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    build_protected_resource_metadata_discovery_urls,
    issuers_match,
)
from mcp.shared.auth import OAuthToken, ProtectedResourceMetadata
from mcp.shared.auth_utils import check_resource_allowed, resource_url_from_server_url
from pydantic import ValidationError

from fleet.destinations import is_loopback
from fleet.mcp.model import HeldToken, HttpServer, McpServer, OAuthClient
from fleet.mcp.upstream.credentials import MissingCredential, read_variable

SECONDS: Final = 30.0
"""Seconds a token endpoint, or a metadata address, has to answer."""
EARLY: Final = 30.0
"""Seconds before a token's end it is renewed (never more than a tenth of its life)."""
MAX_BODY: Final = 64 * 1024
FORMER: Final = 4
"""Tokens replaced that are still scrubbed from what is relayed (one may be good still)."""
JSON: Final = "application/json"
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


class CredentialRefused(MissingCredential):
    """Fleetwarden's client credentials got no token: the endpoint refused them, or none
    could be found or reached. The words name the server, the endpoint's host, what it
    said (an OAuth error code, never its free text) and the variables to check."""


class ClientCredentials(httpx2.Auth):
    """An :class:`httpx2.Auth` sending ``server``'s held token on each request to it, got
    (and renewed) with ``oauth``'s client credentials read from ``environ`` now."""

    requires_response_body = False  # the server's event streams are never read whole

    def __init__(
        self,
        server: str,
        url: str,
        oauth: OAuthClient,
        environ: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._server = server
        self._url = url
        self._oauth = oauth
        self._client_id = read_variable(oauth.client_id_env, environ)
        self._secret = read_variable(oauth.client_secret_env, environ)
        self._clock = clock

    @property
    def held(self) -> HeldToken:
        return self._oauth.held

    async def ready(self) -> None:
        """A good token held (got now when there is none, or it is about to end);
        :class:`CredentialRefused` when none can be got."""
        held = self.held
        if held.value is not None and self._clock() < held.good_until:
            return
        async with _lock_of(held):
            if held.value is None or self._clock() >= held.good_until:
                await self._renew()

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        await self.ready()
        sent = self.held.value
        request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        if response.status_code != 401:
            return
        async with _lock_of(self.held):  # refused: renewed once, unless another did it
            if self.held.value == sent:
                await self._renew()
        request.headers["Authorization"] = f"Bearer {self.held.value}"
        yield request

    async def _renew(self) -> None:
        held = self.held
        if held.value is not None:
            held.former = (held.value, *held.former)[:FORMER]
        held.value = None
        async with httpx2.AsyncClient(timeout=SECONDS, follow_redirects=False) as client:
            token_url = self._oauth.token_url or held.token_url
            if token_url is None:
                found = await self._discover(client)
                self._check_url(found, "its token endpoint")
                self._check_own(found)
                token_url = held.token_url = found
            self._check_url(token_url, "its token endpoint")
            form = {"grant_type": "client_credentials"}
            if self._oauth.scope:
                form["scope"] = self._oauth.scope
            # RFC 6749 §2.3.1: the id and secret form-encoded, then HTTP Basic (as the SDK).
            basic = httpx2.BasicAuth(quote(self._client_id, safe=""), quote(self._secret, safe=""))
            try:
                status, body = await _capped(client, "POST", token_url, data=form, auth=basic)
            except httpx2.HTTPError as exc:
                why = f"could not be reached ({type(exc).__name__})"
                raise self._refused(f"its token endpoint {_origin(token_url)} {why}") from None
        if status != 200:
            said = f"HTTP {status}{_code(body)}"
            raise self._refused(
                f"its token endpoint {_origin(token_url)} refused Fleetwarden's client "
                f"credentials ({said})"
            )
        try:
            token = OAuthToken.model_validate_json(body)
        except ValidationError:
            where = _origin(token_url)
            raise self._refused(f"its token endpoint {where} answered no bearer token") from None
        now = self._clock()
        life = float(token.expires_in) if token.expires_in is not None else None
        held.value = token.access_token
        held.good_until = float("inf") if life is None else now + life - min(EARLY, life / 10)

    async def _discover(self, client: httpx2.AsyncClient) -> str:
        """The token endpoint named by the metadata of the authorization server the
        server's protected-resource metadata names (which must say it is that issuer)."""
        found = await _first_json(
            client, build_protected_resource_metadata_discovery_urls(None, self._url)
        )
        try:
            prm = ProtectedResourceMetadata.model_validate(found)
        except ValidationError:
            raise self._refused(
                f"{_origin(self._url)} has no protected-resource metadata naming its "
                f"authorization server: give mcp.{self._server}.oauth.token_url"
            ) from None
        if not check_resource_allowed(resource_url_from_server_url(self._url), str(prm.resource)):
            raise self._refused(f"{_origin(self._url)} has the metadata of another resource")
        issuer = str(prm.authorization_servers[0])
        self._check_url(issuer, "its authorization server")
        metadata = await _first_json(
            client, build_oauth_authorization_server_metadata_discovery_urls(issuer, self._url)
        )
        said = metadata if isinstance(metadata, dict) else {}
        endpoint, named = said.get("token_endpoint"), said.get("issuer")
        if not isinstance(endpoint, str) or not isinstance(named, str):
            raise self._refused(
                f"its authorization server {_origin(issuer)} has no metadata naming its token "
                f"endpoint: give mcp.{self._server}.oauth.token_url"
            )
        if not issuers_match(named, issuer):
            raise self._refused(
                f"its authorization server {_origin(issuer)} has the metadata of another issuer"
            )
        return endpoint

    def _check_own(self, endpoint: str) -> None:
        """A token endpoint the server's metadata named must be on the server's own
        origin: elsewhere, only the operator may send the client secret (``token_url``)."""
        own = _origin_of(self._url)
        if own is not None and _origin_of(endpoint) == own:
            return
        raise CredentialRefused(
            f"MCP server {self._server} got no OAuth token: its metadata names the token "
            f"endpoint {_origin(endpoint)}, not on the server's own origin "
            f"{_origin(self._url)}, and the client secret goes elsewhere only where the "
            f"config says: give mcp.{self._server}.oauth.token_url (the authorization "
            "server's token endpoint, as its operator documents it)"
        )

    def _check_url(self, url: str, what: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        local = is_loopback(host, under_localhost=False)
        if parts.scheme == "https" or (parts.scheme == "http" and local):
            return
        raise CredentialRefused(
            f"MCP server {self._server} got no OAuth token: {what} {_origin(url)} is not an "
            "https:// address, and the client secret never crosses the network unencrypted: "
            f"give mcp.{self._server}.oauth.token_url as https://…"
        )

    def _refused(self, what: str) -> CredentialRefused:
        return CredentialRefused(
            f"MCP server {self._server} got no OAuth token: {what}. Check "
            f"{self._oauth.client_id_env} and {self._oauth.client_secret_env} in Fleetwarden's "
            f"environment, and mcp.{self._server}.oauth"
        )


async def held_auth(
    server: str, url: str, oauth: OAuthClient | None, environ: Mapping[str, str]
) -> ClientCredentials | None:
    """The auth sending ``server``'s token, a good one held already (``None`` without
    ``oauth``); :class:`MissingCredential` (or :class:`CredentialRefused`) when it cannot
    be got."""
    if oauth is None:
        return None
    auth = ClientCredentials(server, url, oauth, environ)
    await auth.ready()
    return auth


async def token_problems(
    servers: Mapping[str, McpServer], environ: Mapping[str, str]
) -> list[tuple[tuple[str, ...], str]]:
    """Each server of ``servers`` with OAuth client credentials asked for a token now, as
    ``check-config --online`` does: where in the config the fix goes, and why none came
    (the token got is kept by no one)."""
    found: list[tuple[tuple[str, ...], str]] = []
    for name, server in servers.items():
        transport = server.transport
        if not isinstance(transport, HttpServer) or transport.oauth is None:
            continue
        oauth = dataclasses.replace(transport.oauth, held=HeldToken())
        try:
            await ClientCredentials(name, transport.url, oauth, environ).ready()
        except MissingCredential as exc:
            found.append((("mcp", name, "oauth"), f"{exc}"))
    return found


async def _first_json(client: httpx2.AsyncClient, urls: list[str]) -> object:
    """The JSON of the first of ``urls`` that answers 200 with it (``None``: none)."""
    for url in urls:
        with contextlib.suppress(httpx2.HTTPError, ValueError):
            status, body = await _capped(client, "GET", url, headers={"Accept": JSON})
            if status == 200:
                return json.loads(body)
    return None


async def _capped(
    client: httpx2.AsyncClient, method: str, url: str, **options: Any
) -> tuple[int, bytes]:
    """The status and body of ``method url``, the body cut at :data:`MAX_BODY` (an
    endpoint's answer is small; a larger one is not JSON once cut)."""
    body = b""
    async with client.stream(method, url, **options) as response:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY:
                break
    return response.status_code, body[: MAX_BODY + 1]


_RENEWING: weakref.WeakKeyDictionary[HeldToken, tuple[asyncio.AbstractEventLoop, asyncio.Lock]]
_RENEWING = weakref.WeakKeyDictionary()
"""Each held token's lock, on the loop that made it: kept apart from the token, a value."""


def _lock_of(held: HeldToken) -> asyncio.Lock:
    """One renewal at a time per held token, on the running loop."""
    loop = asyncio.get_running_loop()
    renewing = _RENEWING.get(held)
    if renewing is None or renewing[0] is not loop:
        renewing = _RENEWING[held] = (loop, asyncio.Lock())
    return renewing[1]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """``url``'s scheme, host and port (the default port of its scheme written out), as
    RFC 6454 compares origins; ``None`` for an address that has none."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme)
    except ValueError:
        return None
    if not host or port is None:
        return None
    return scheme, host, port


def _code(body: bytes) -> str:
    """The OAuth error code of a refusal's body (``invalid_client``), when it has one."""
    with contextlib.suppress(ValueError, AttributeError):
        code = json.loads(body).get("error")
        if isinstance(code, str) and _ERROR_CODE.fullmatch(code):
            return f", {code}"
    return ""
