"""A GitHub App's credentials: the short JWT that speaks as the App, and the installation
tokens minted with it, one per repository.

The JWT is RS256-signed with the App's private key (``cryptography``; no JWT library):
issued a minute in the past (clock drift), valid nine minutes, ``iss`` the App's id. A
repository's token comes from ``GET /repos/{owner}/{repo}/installation`` (which
installation covers it) and ``POST /app/installations/{id}/access_tokens`` narrowed to
that one repository (an org's membership questions get a token of the org's
installation that may only read members). A token is kept until five minutes before its
``expires_at`` and minted again then. One lock per repository (or org): callers arriving
together share one mint.

Neither the key nor a token is ever in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from fleet.forge.api.rest import ForgeHttp
from fleet.forge.model import ForgeApiError
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import Clock

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

RENEW_AHEAD: Final = timedelta(minutes=5)  # mint again this close to a token's expiry
JWT_BACKDATE: Final = timedelta(seconds=60)  # GitHub's advice against clock drift
JWT_LIFETIME: Final = timedelta(minutes=9)  # GitHub refuses more than ten


@dataclass(frozen=True, slots=True)
class AppKey:
    """A GitHub App: its id (or client id) and its private key, PEM text."""

    app_id: str
    private_key: str = field(repr=False)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_key(pem: str) -> RSAPrivateKey:
    """The App's RSA private key from its PEM text; ForgeApiError (saying nothing of the
    key's content) when it is not one. (``cryptography`` loads here, where an App is
    configured: a start without one pays nothing for it.)"""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise ForgeApiError(
            "the GitHub App's private key cannot be read: give the PEM file GitHub made"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ForgeApiError("the GitHub App's private key is not an RSA key")
    return key


def app_jwt(app_id: str, key: RSAPrivateKey, now: datetime) -> str:
    """The JWT that authenticates as the App at ``now`` (RS256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    issued = int((now - JWT_BACKDATE).timestamp())
    claims = {
        "iat": issued,
        "exp": int((now + JWT_LIFETIME).timestamp()),
        "iss": int(app_id) if app_id.isdigit() else app_id,
    }
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64(signature)}"


@dataclass(frozen=True, slots=True)
class _Minted:
    token: str = field(repr=False)
    expires_at: datetime


def _expiry(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ForgeApiError("GitHub minted an installation token without expires_at")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ForgeApiError("GitHub minted an installation token with a bad expires_at") from None
    if when.tzinfo is None:
        raise ForgeApiError("GitHub minted an installation token with a bad expires_at")
    return when


class AppTokens:
    """Installation tokens of one App, minted through ``http``: per repository (narrowed
    to it), and per org for membership questions (narrowed to reading members)."""

    def __init__(self, http: ForgeHttp, app: AppKey, clock: Clock) -> None:
        self._http = http
        self._app_id = app.app_id
        self._key = load_key(app.private_key)
        self._clock = clock
        self._tokens: dict[Slug | str, _Minted] = {}
        self._installations: dict[Slug | str, int] = {}
        self._locks: dict[Slug | str, asyncio.Lock] = {}

    def jwt(self) -> str:
        """A fresh JWT speaking as the App."""
        return app_jwt(self._app_id, self._key, self._clock.now())

    async def token(self, repo: Slug) -> str:
        """A live installation token reaching ``repo`` (and only it)."""
        return await self._cached(repo)

    async def org_token(self, org: str) -> str:
        """A live installation token of ``org``'s installation that may only read its
        members and teams."""
        return await self._cached(org)

    def forget(self, scope: Slug | str) -> None:
        """Drop the token of ``scope`` (GitHub refused it): the next call mints another."""
        self._tokens.pop(scope, None)

    async def _cached(self, scope: Slug | str) -> str:
        minted = self._tokens.get(scope)
        if minted is not None and self._fresh(minted):
            return minted.token
        async with self._locks.setdefault(scope, asyncio.Lock()):
            minted = self._tokens.get(scope)
            if minted is None or not self._fresh(minted):
                minted = await self._mint(scope)
                self._tokens[scope] = minted
            return minted.token

    def _fresh(self, minted: _Minted) -> bool:
        return self._clock.now() < minted.expires_at - RENEW_AHEAD

    async def _installation(self, scope: Slug | str, auth: str) -> int:
        known = self._installations.get(scope)
        if known is not None:
            return known
        if isinstance(scope, Slug):
            owner, name = quote(scope.owner, safe=""), quote(scope.name, safe="")
            path = f"/repos/{owner}/{name}/installation"
        else:
            path = f"/orgs/{quote(scope, safe='')}/installation"
        answer = await self._http.call("GET", path, auth=auth)
        found = answer.data.get("id") if isinstance(answer.data, dict) else None
        if not isinstance(found, int) or isinstance(found, bool):
            raise ForgeApiError(f"GitHub named no installation of the App on {scope}")
        self._installations[scope] = found
        return found

    async def _mint(self, scope: Slug | str) -> _Minted:
        auth = f"Bearer {self.jwt()}"
        installation = await self._installation(scope, auth)
        narrow: dict[str, Any] = (
            {"repositories": [scope.name]}
            if isinstance(scope, Slug)
            else {"permissions": {"members": "read"}}
        )
        try:
            answer = await self._http.call(
                "POST",
                f"/app/installations/{installation}/access_tokens",
                auth=auth,
                body=narrow,
                expect=(201,),
            )
        except ForgeApiError as exc:
            if exc.status == 404:  # uninstalled, or installed again under a new id
                self._installations.pop(scope, None)
            raise
        data = answer.data if isinstance(answer.data, dict) else {}
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise ForgeApiError(f"GitHub minted no installation token for {scope}")
        return _Minted(token, _expiry(data.get("expires_at")))
