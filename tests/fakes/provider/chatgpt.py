"""A fake of ChatGPT's Codex backend and OpenAI's OAuth token endpoint on one loopback server.

It owns ChatGPT logins as Codex holds them (``auth.json``): short-lived JWT access tokens
bound to an account, rotating refresh tokens, reuse detection that revokes the whole login
(as the real service treats a replayed refresh token as theft), and Codex's quota headers
per account. Paths are the real ones (``/backend-api/codex/responses``,
``/backend-api/codex/models``, ``/oauth/token``), so a client's default upstreams only need
their host swapped. Model answers are :class:`~tests.fakes.provider.server.FakeProvider`'s
Responses API turns.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.provider.server import (
    Admission,
    Api,
    FakeProvider,
    Refusal,
    Turn,
    bearer,
)
from tests.fakes.provider.validation import check_codex_body

__all__ = [
    "AUTH_CLAIM",
    "CODEX_MODELS",
    "CODEX_RESPONSES",
    "TOKEN_PATH",
    "FakeChatGpt",
    "Login",
    "RefreshAttempt",
    "codex_headers",
    "jwt_claims",
]

CODEX_RESPONSES = "/backend-api/codex/responses"
CODEX_MODELS = "/backend-api/codex/models"
TOKEN_PATH = "/oauth/token"
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"
ISSUER = "https://auth.openai.com"
CODEX_MODEL_SLUGS = ("gpt-5-codex", "gpt-5")

_REUSED = (
    "Your refresh token has already been used to generate a new access token. "
    "Please try signing in again."
)
_INVALIDATED = "Your refresh token has been invalidated. Please try signing in again."
_EXPIRED = "Provided authentication token is expired. Please try signing in again."
_INVALID = "Could not validate your authentication token. Please try signing in again."

Outcome = Literal["rotated", "reused", "invalidated", "malformed"]


# --- Tokens -----------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: Mapping[str, Any]) -> str:
    """An RS256-shaped JWT with a random (fake) signature; nothing verifies it."""
    header = {"alg": "RS256", "typ": "JWT"}
    signature = secrets.token_bytes(256)  # an RSA-2048 signature's length
    parts = [json.dumps(header).encode(), json.dumps(dict(claims)).encode(), signature]
    return ".".join(_b64url(p) for p in parts)


def jwt_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, decoded without verifying; ValueError if it is no JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT: expected three dot-separated parts")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    claims = json.loads(base64.urlsafe_b64decode(payload))
    if not isinstance(claims, dict):
        raise ValueError("JWT claims are not an object")
    return claims


def codex_headers(
    *,
    primary: float,
    secondary: float,
    primary_reset_after: int,
    secondary_reset_after: int,
    now: float | None = None,
    turn_state: str | None = None,
) -> dict[str, str]:
    """Codex's quota headers: used percent (0-100) of the 5-hour and weekly windows.

    Resets are relative seconds; with ``now`` the absolute ``-reset-at`` (epoch seconds)
    is sent too (Codex 0.169.0 itself reads only ``-reset-at``). ``x-codex-turn-state`` is
    opaque session state, not quota.
    """
    headers: dict[str, str] = {}
    for name, used, minutes, after in (
        ("primary", primary, 300, primary_reset_after),
        ("secondary", secondary, 10080, secondary_reset_after),
    ):
        headers[f"x-codex-{name}-used-percent"] = f"{used:g}"
        headers[f"x-codex-{name}-window-minutes"] = str(minutes)
        headers[f"x-codex-{name}-reset-after-seconds"] = str(after)
        if now is not None:
            headers[f"x-codex-{name}-reset-at"] = str(int(now) + after)
    headers["x-codex-turn-state"] = turn_state or f"ts_{secrets.token_urlsafe(12)}"
    return headers


# --- Logins -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    """A snapshot of one login's live tokens."""

    account_id: str
    email: str
    plan: str
    id_token: str
    access_token: str
    refresh_token: str
    expires_at: float
    revoked: bool


@dataclass(frozen=True)
class RefreshAttempt:
    """One call to the token endpoint and what came of it."""

    refresh_token: str | None
    client_id: str | None
    grant_type: str | None
    reason: str | None  # Codex's refresh_reason: "unauthorized_recovery", "proactive_expiry"
    form: bool  # the body was form-encoded (else JSON)
    outcome: Outcome
    account_id: str | None


@dataclass
class _Session:
    """One login's token family: refreshing rotates all three tokens."""

    account_id: str
    email: str
    plan: str
    user_id: str
    id_token: str = ""
    access_token: str = ""
    refresh_token: str = ""
    expires_at: float = 0.0
    previous_refresh: set[str] = field(default_factory=set)
    revoked: bool = False

    def snapshot(self) -> Login:
        return Login(
            self.account_id,
            self.email,
            self.plan,
            self.id_token,
            self.access_token,
            self.refresh_token,
            self.expires_at,
            self.revoked,
        )


def _chatgpt_error(status: int, code: str, message: str) -> Refusal:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return Refusal(status, {"error": error})


class FakeChatGpt(FakeProvider):
    """ChatGPT's Codex backend and token endpoint, serving :class:`Turn` scripts.

    ``add_login`` creates a login and returns its ``auth.json``; the Codex paths need
    ``Authorization: Bearer <current access token>`` and a matching ``chatgpt-account-id``.
    A responses body the backend would refuse (``input`` not a list, a model not in
    ``models``) is answered its 400 ``{"detail": …}``.
    ``codex_headers[account_id]`` is sent on that account's answers (a neutral set is
    installed by ``add_login``); an account id or access token in ``rejecting`` is
    answered 429 ``usage_limit_reached``. ``refreshes`` counts successful rotations and
    ``refresh_log`` records every token-endpoint call.
    """

    def __init__(
        self,
        *turns: Turn,
        default: Turn | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        access_ttl: float = 3600.0,
        models: tuple[str, ...] = CODEX_MODEL_SLUGS,
        any_model: bool = False,
    ) -> None:
        super().__init__(
            *turns, default=default, models=models, clock=clock, sleep=sleep, any_model=any_model
        )
        self.access_ttl = access_ttl
        self.codex_headers: dict[str, Mapping[str, str]] = {}
        self.refreshes = 0
        self.refresh_log: list[RefreshAttempt] = []
        self._sessions: list[_Session] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post(TOKEN_PATH, self._token)
        super().routes(app)

    # --- logins ----------------------------------------------------------------------

    def add_login(
        self, account_id: str, *, email: str = "dev@example.org", plan: str = "pro"
    ) -> dict[str, Any]:
        """Create a live login; return it as Codex's ``auth.json`` content."""
        user_id = "user-" + hashlib.sha256(account_id.encode()).hexdigest()[:24]
        session = _Session(account_id, email, plan, user_id)
        self._issue(session)
        self._sessions.append(session)
        now = self._clock()
        neutral = codex_headers(
            primary=0.0,
            secondary=0.0,
            primary_reset_after=18000,
            secondary_reset_after=604800,
            now=now,
        )
        self.codex_headers.setdefault(account_id, neutral)
        stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        tokens = {
            "id_token": session.id_token,
            "access_token": session.access_token,
            "refresh_token": session.refresh_token,
            "account_id": account_id,
        }
        return {
            "OPENAI_API_KEY": None,
            "auth_mode": "chatgpt",
            "tokens": tokens,
            "last_refresh": stamp,
        }

    def login(self, account_id: str) -> Login:
        """The newest login of an account (KeyError if it has none)."""
        for session in reversed(self._sessions):
            if session.account_id == account_id:
                return session.snapshot()
        raise KeyError(account_id)

    def revoke(self, account_id: str) -> None:
        """Revoke every login of the account: its tokens stop working."""
        self.login(account_id)  # KeyError for an unknown account
        for session in self._sessions:
            if session.account_id == account_id:
                session.revoked = True

    def _issue(self, session: _Session) -> None:
        now = self._clock()
        exp = int(now + self.access_ttl)
        auth = {
            "chatgpt_account_id": session.account_id,
            "chatgpt_plan_type": session.plan,
            "chatgpt_user_id": session.user_id,
            "user_id": session.user_id,
        }
        common = {"iss": ISSUER, "sub": session.user_id, "iat": int(now), "exp": exp}
        session.id_token = make_jwt(
            {
                **common,
                "aud": ["app_fake"],
                "email": session.email,
                "email_verified": True,
                "auth_time": int(now),
                AUTH_CLAIM: auth,
            }
        )
        session.access_token = make_jwt(
            {
                **common,
                "aud": ["https://api.openai.com/v1"],
                "jti": secrets.token_hex(16),
                "scp": ["openid", "profile", "email", "offline_access"],
                AUTH_CLAIM: auth,
                PROFILE_CLAIM: {"email": session.email, "email_verified": True},
            }
        )
        if session.refresh_token:
            session.previous_refresh.add(session.refresh_token)
        session.refresh_token = f"rt_{secrets.token_urlsafe(48)}"
        session.expires_at = now + self.access_ttl

    # --- Codex backend ---------------------------------------------------------------

    def _admit(self, request: web.Request, path: str) -> Admission:
        if path not in (CODEX_RESPONSES, CODEX_MODELS):
            return Admission()  # answered 404 by _serve
        auths = request.headers.getall("Authorization", [])
        token = bearer(auths[0]) if len(auths) == 1 else None
        session = next((s for s in self._sessions if s.access_token == token), None)
        if token is None or session is None or session.revoked:
            return Admission(refusal=_chatgpt_error(401, "invalid_token", _INVALID))
        if self._clock() >= session.expires_at:
            return Admission(refusal=_chatgpt_error(401, "token_expired", _EXPIRED))
        if request.headers.get("chatgpt-account-id") != session.account_id:
            message = "The chatgpt-account-id header does not match the authentication token."
            return Admission(refusal=_chatgpt_error(401, "invalid_token", message))
        headers = self.codex_headers.get(session.account_id, {})
        if session.account_id in self.rejecting or token in self.rejecting:
            return Admission(token, self._usage_limit(session, headers), headers)
        return Admission(token, None, headers)

    def _usage_limit(self, session: _Session, headers: Mapping[str, str]) -> Refusal:
        after = int(headers.get("x-codex-primary-reset-after-seconds", "3600"))
        error = {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": session.plan,
            "resets_at": int(self._clock()) + after,
            "resets_in_seconds": after,
        }
        return Refusal(429, {"error": error})

    def _check(
        self, request: web.Request, path: str, api: Api | None, raw: bytes
    ) -> Refusal | None:
        if request.method != "POST" or path != CODEX_RESPONSES:
            return None
        return check_codex_body(raw, None if self.any_model else self.models)

    async def _serve(
        self, request: web.Request, path: str, api: Api | None, body: Any
    ) -> web.StreamResponse:
        if request.method == "POST" and path == CODEX_RESPONSES:
            return await self._answer(request, "responses", body if isinstance(body, dict) else {})
        if request.method == "GET" and path == CODEX_MODELS:
            return _json({"models": [{"slug": slug} for slug in self.models]})
        # Includes a WebSocket attempt on the responses path: non-101, so HTTP is used.
        return _json({"detail": "Not Found"}, 404)

    # --- OAuth token endpoint --------------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        """Refresh: Codex 0.169.0 posts JSON ``client_id``, ``grant_type``,
        ``refresh_reason`` and ``refresh_token`` (no scope); forms are accepted too."""
        raw = await request.read()
        form = request.content_type == "application/x-www-form-urlencoded"
        fields = _token_fields(raw, form)
        body = None if form else fields
        self._record(request, raw, body, None, None)
        grant, token, client = (fields.get(k) for k in ("grant_type", "refresh_token", "client_id"))
        # No await from here on: concurrent refreshes are decided one at a time, in order.
        missing = [k for k, v in (("grant_type", grant), ("refresh_token", token)) if not v]
        if not client:
            missing.append("client_id")
        if missing or grant != "refresh_token":
            self._log(fields, form, "malformed", None)
            if missing:
                message = f"Missing required parameter: '{missing[0]}'."
                refusal = _chatgpt_error(400, "missing_required_parameter", message)
            else:
                message = f"Unsupported grant type: '{grant}'."
                refusal = _chatgpt_error(400, "unsupported_grant_type", message)
            return self._refuse(refusal)
        current = next((s for s in self._sessions if s.refresh_token == token), None)
        if current is not None and not current.revoked:
            self._issue(current)
            self.refreshes += 1
            self._log(fields, form, "rotated", current.account_id)
            answer = {
                "id_token": current.id_token,
                "access_token": current.access_token,
                "refresh_token": current.refresh_token,
                "expires_in": int(self.access_ttl),
            }
            return _json(answer)
        stolen = next((s for s in self._sessions if token in s.previous_refresh), None)
        if stolen is not None:  # a replayed refresh token: revoke the whole login
            stolen.revoked = True
            self._log(fields, form, "reused", stolen.account_id)
            return self._refuse(_chatgpt_error(401, "refresh_token_reused", _REUSED))
        account = current.account_id if current is not None else None
        self._log(fields, form, "invalidated", account)
        return self._refuse(_chatgpt_error(401, "refresh_token_invalidated", _INVALIDATED))

    def _log(
        self, fields: Mapping[str, str], form: bool, outcome: Outcome, account_id: str | None
    ) -> None:
        token, client, grant, reason = (
            fields.get(k) for k in ("refresh_token", "client_id", "grant_type", "refresh_reason")
        )
        attempt = RefreshAttempt(token, client, grant, reason, form, outcome, account_id)
        self.refresh_log.append(attempt)


def _token_fields(raw: bytes, form: bool) -> dict[str, str]:
    """The string fields of a token request, from a form or a JSON object body."""
    if form:
        return dict(parse_qsl(raw.decode(errors="replace")))
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {k: v for k, v in parsed.items() if isinstance(v, str)}


def _json(body: Mapping[str, Any], status: int = 200) -> web.Response:
    data = json.dumps(body).encode()
    return web.Response(body=data, status=status, content_type="application/json")
