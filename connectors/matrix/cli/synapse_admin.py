"""Synapse's admin API, for what matrix-nio lacks: registering users and rate limits.

Shared-secret registration (``/_synapse/admin/v1/register``, HMAC-SHA1 over nonce, user,
password and ``notadmin``), user creation with an admin token (``/_synapse/admin/v2/users``)
and ``override_ratelimit``. Users are always created as normal users, never server admins.
Any non-2xx answer raises :class:`~connectors.matrix.cli.setup_types.SetupRefused` with its
Matrix error code.

aiohttp is imported only for type checking: the caller owns the session.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from connectors.matrix.cli.setup_types import Registration, SetupRefused

if TYPE_CHECKING:
    import aiohttp

RATE_LIMIT_LIFTED = {"messages_per_second": 0, "burst_count": 0}
"""The ``override_ratelimit`` body that removes a user's message rate limit."""


class SynapseAdmin:
    """JSON over HTTP to one homeserver; any non-2xx answer raises :class:`SetupRefused`."""

    def __init__(self, session: aiohttp.ClientSession, homeserver: str) -> None:
        self._session = session
        self._base = homeserver

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One request; the JSON object it answers (``{"error": text}`` when not JSON)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        url = self._base + path
        async with self._session.request(method, url, json=body, headers=headers) as response:
            text = await response.text()
        try:
            reply = json.loads(text) if text else {}
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            reply = {"error": text[:200].strip()}
        if response.status < 300:
            return reply
        errcode = str(reply.get("errcode", ""))
        if response.status == 404 and errcode in ("", "M_UNRECOGNIZED") and "/_synapse/" in path:
            raise SetupRefused(
                f"{self._base} has no Synapse admin API ({method} {path}: HTTP 404). On "
                "Conduit, register the accounts first and run without --registration-secret-env"
                " and --admin-token-env (see conduit/README.md)",
                "M_UNRECOGNIZED",
            )
        detail = f"{errcode} {reply.get('error', '')}".strip()
        raise SetupRefused(f"{method} {path}: HTTP {response.status} {detail}".strip(), errcode)

    async def register_shared_secret(
        self, secret: str, localpart: str, password: str
    ) -> Registration:
        """Register a normal user with ``registration_shared_secret``, unless it exists."""
        path = "/_synapse/admin/v1/register"
        nonce = _text(await self.call("GET", path), "nonce")
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": False,
            "mac": registration_mac(secret, nonce, localpart, password),
        }
        try:
            reply = await self.call("POST", path, body=body)
        except SetupRefused as exc:
            if exc.errcode == "M_USER_IN_USE":
                return "existing"
            raise
        # Registering logs the user in; that session is of no use to anyone: end it.
        await self.call("POST", "/_matrix/client/v3/logout", token=_text(reply, "access_token"))
        return "registered"

    async def register_with_token(
        self, token: str, localpart: str, user_id: str | None, password: str
    ) -> Registration:
        """Create a normal user with a server admin's token, unless it exists."""
        if user_id is None:  # the server name is the admin's own
            whoami = await self.call("GET", "/_matrix/client/v3/account/whoami", token=token)
            user_id = f"@{localpart}:{_text(whoami, 'user_id').split(':', 1)[1]}"
        path = f"/_synapse/admin/v2/users/{quote(user_id)}"
        try:
            await self.call("GET", path, token=token)
            return "existing"  # left alone: a PUT would reset its password
        except SetupRefused as exc:
            if exc.errcode != "M_NOT_FOUND":
                raise
        await self.call("PUT", path, token=token, body={"password": password, "admin": False})
        return "registered"

    async def lift_rate_limit(
        self, token: str, user_id: str
    ) -> Literal["lifted", "already lifted"]:
        """Remove ``user_id``'s message rate limit with a server admin's token."""
        path = f"/_synapse/admin/v1/users/{quote(user_id)}/override_ratelimit"
        current = await self.call("GET", path, token=token)
        if all(current.get(key) == 0 for key in RATE_LIMIT_LIFTED):
            return "already lifted"
        await self.call("POST", path, token=token, body=dict(RATE_LIMIT_LIFTED))
        return "lifted"


def registration_mac(secret: str, nonce: str, localpart: str, password: str) -> str:
    """The hex HMAC-SHA1 Synapse expects for registering a non-admin user."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\0".join([nonce.encode(), localpart.encode(), password.encode(), b"notadmin"]))
    return mac.hexdigest()


def _text(reply: Mapping[str, Any], key: str) -> str:
    value = reply.get(key)
    if not isinstance(value, str):
        raise SetupRefused(
            f"unexpected reply from the homeserver: no {key!r} among {sorted(reply)}"
        )
    return value
