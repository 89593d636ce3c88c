"""The fake ChatGPT Codex backend and token endpoint check logins as the real ones do."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from tests.fakes.provider.chatgpt import (
    AUTH_CLAIM,
    CODEX_MODELS,
    CODEX_RESPONSES,
    TOKEN_PATH,
    FakeChatGpt,
    codex_headers,
    jwt_claims,
)
from tests.fakes.provider.server import Turn

ACCOUNT = "acct-1111"
OTHER = "acct-2222"
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
START = 1_795_000_000.0


class Clock:
    """A settable clock for token expiry."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def chatgpt_clock() -> Clock:
    return Clock()


@pytest.fixture
async def chatgpt(chatgpt_clock: Clock) -> AsyncIterator[FakeChatGpt]:
    async with FakeChatGpt(clock=chatgpt_clock) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def auth(access_token: str, account_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}", "chatgpt-account-id": account_id}


async def respond(
    session: aiohttp.ClientSession, fake: FakeChatGpt, headers: dict[str, str]
) -> tuple[int, str, aiohttp.ClientResponse]:
    body = {"model": "gpt-5-codex", "stream": True, "instructions": "Be brief.", "input": []}
    async with session.post(fake.base_url + CODEX_RESPONSES, json=body, headers=headers) as r:
        return r.status, await r.text(), r


async def refresh(
    session: aiohttp.ClientSession, fake: FakeChatGpt, token: str | None, *, form: bool = False
) -> tuple[int, dict[str, Any]]:
    # Exactly what Codex 0.169.0 sends (JSON, no scope); the form variant for other clients.
    fields = {"client_id": CLIENT_ID, "grant_type": "refresh_token"}
    fields["refresh_reason"] = "unauthorized_recovery"
    if token is not None:
        fields["refresh_token"] = token
    sent: dict[str, Any] = {"data": fields} if form else {"json": fields}
    async with session.post(fake.base_url + TOKEN_PATH, **sent) as response:
        return response.status, await response.json()


def error_code(text: str) -> str:
    return json.loads(text)["error"]["code"]


# --- Logins ----------------------------------------------------------------------------


async def test_add_login_returns_codex_auth_json(chatgpt) -> None:
    """add_login returns auth.json in Codex's shape with decodable, account-bound JWTs."""
    data = chatgpt.add_login(ACCOUNT, email="ann@example.org", plan="plus")
    assert list(data) == ["OPENAI_API_KEY", "auth_mode", "tokens", "last_refresh"]
    assert data["OPENAI_API_KEY"] is None and data["auth_mode"] == "chatgpt"
    tokens = data["tokens"]
    assert set(tokens) == {"id_token", "access_token", "refresh_token", "account_id"}
    assert tokens["account_id"] == ACCOUNT
    stamp = datetime.strptime(data["last_refresh"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert stamp.replace(tzinfo=UTC).timestamp() == START
    for name in ("id_token", "access_token"):
        assert "=" not in tokens[name] and tokens[name].count(".") == 2
        assert all(tokens[name].split("."))  # Codex refuses an id_token without signature
    id_claims = jwt_claims(tokens["id_token"])
    assert id_claims["email"] == "ann@example.org"
    assert id_claims["iat"] == int(START) and id_claims["exp"] == int(START) + 3600
    assert id_claims[AUTH_CLAIM]["chatgpt_account_id"] == ACCOUNT
    assert id_claims[AUTH_CLAIM]["chatgpt_plan_type"] == "plus"
    assert id_claims[AUTH_CLAIM]["chatgpt_user_id"].startswith("user-")
    access_claims = jwt_claims(tokens["access_token"])
    assert access_claims["exp"] == int(START) + 3600
    assert access_claims[AUTH_CLAIM] == id_claims[AUTH_CLAIM]
    login = chatgpt.login(ACCOUNT)
    assert login.access_token == tokens["access_token"] and not login.revoked


async def test_jwt_header_and_bad_tokens(chatgpt) -> None:
    """Issued JWTs carry an RS256 header; jwt_claims refuses what is not a JWT."""
    token = chatgpt.add_login(ACCOUNT)["tokens"]["access_token"]
    head = token.split(".")[0]
    assert jwt_claims(f"x.{head}.y") == {"alg": "RS256", "typ": "JWT"}
    with pytest.raises(ValueError):
        jwt_claims("opaque")


# --- Codex backend ---------------------------------------------------------------------


async def test_right_token_and_account_are_served(chatgpt, session) -> None:
    """The current access token with its account id gets a Responses stream and quota headers."""
    tokens = chatgpt.add_login(ACCOUNT)["tokens"]
    chatgpt.codex_headers[ACCOUNT] = codex_headers(
        primary=12.5, secondary=40.0, primary_reset_after=3600, secondary_reset_after=86400
    )
    chatgpt.add(Turn(text="from codex"))
    status, text, response = await respond(session, chatgpt, auth(tokens["access_token"], ACCOUNT))
    assert status == 200 and response.headers["Content-Type"] == "text/event-stream"
    assert "response.completed" in text and "from codex" in text
    assert response.headers["x-codex-primary-used-percent"] == "12.5"
    assert response.headers["x-codex-primary-window-minutes"] == "300"
    assert response.headers["x-codex-primary-reset-after-seconds"] == "3600"
    assert response.headers["x-codex-secondary-used-percent"] == "40"
    assert response.headers["x-codex-secondary-window-minutes"] == "10080"
    assert response.headers["x-codex-secondary-reset-after-seconds"] == "86400"
    assert response.headers["x-codex-turn-state"]
    (recorded,) = chatgpt.requests
    assert recorded.credential == tokens["access_token"] and recorded.api == "responses"
    assert chatgpt.emitted[0].api == "responses"


async def test_codex_headers_per_account_and_reset_at(chatgpt, session) -> None:
    """Each account gets its own quota headers; with now, -reset-at is absolute."""
    first = chatgpt.add_login(ACCOUNT)["tokens"]["access_token"]
    second = chatgpt.add_login(OTHER)["tokens"]["access_token"]
    chatgpt.codex_headers[OTHER] = codex_headers(
        primary=90, secondary=5, primary_reset_after=60, secondary_reset_after=120, now=START
    )
    _, _, one = await respond(session, chatgpt, auth(first, ACCOUNT))
    _, _, two = await respond(session, chatgpt, auth(second, OTHER))
    assert one.headers["x-codex-primary-used-percent"] == "0"
    assert one.headers["x-codex-primary-reset-at"] == str(int(START) + 18000)
    assert two.headers["x-codex-primary-used-percent"] == "90"
    assert two.headers["x-codex-primary-reset-at"] == str(int(START) + 60)
    assert two.headers["x-codex-secondary-reset-at"] == str(int(START) + 120)


@pytest.mark.parametrize(
    "headers",
    [
        lambda token: auth(token, OTHER),
        lambda token: {"Authorization": f"Bearer {token}"},
        lambda token: auth("placeholder", ACCOUNT),
        lambda token: {"chatgpt-account-id": ACCOUNT},
    ],
    ids=["wrong-account", "no-account", "placeholder", "no-token"],
)
async def test_wrong_account_or_token_is_refused(chatgpt, session, headers) -> None:
    """A wrong or missing account id or token gets 401 invalid_token and consumes no turn."""
    token = chatgpt.add_login(ACCOUNT)["tokens"]["access_token"]
    chatgpt.add_login(OTHER)
    status, text, response = await respond(session, chatgpt, headers(token))
    assert status == 401 and response.headers["Content-Type"] == "application/json"
    error = json.loads(text)["error"]
    assert error["code"] == "invalid_token" and error["type"] == "invalid_request_error"
    assert error["message"]
    assert chatgpt.emitted == [] and chatgpt.refused == chatgpt.requests
    assert "x-codex-primary-used-percent" not in response.headers


async def test_expired_access_token_is_refused(chatgpt, session, chatgpt_clock) -> None:
    """Past its expiry (injected clock) an access token gets 401 token_expired."""
    token = chatgpt.add_login(ACCOUNT)["tokens"]["access_token"]
    chatgpt_clock.now = START + 3599
    status, _, _ = await respond(session, chatgpt, auth(token, ACCOUNT))
    assert status == 200
    chatgpt_clock.now = START + 3600
    status, text, _ = await respond(session, chatgpt, auth(token, ACCOUNT))
    assert status == 401 and error_code(text) == "token_expired"


async def test_revoke_stops_the_login(chatgpt, session) -> None:
    """After revoke(account) its access and refresh tokens no longer work."""
    tokens = chatgpt.add_login(ACCOUNT)["tokens"]
    chatgpt.revoke(ACCOUNT)
    assert chatgpt.login(ACCOUNT).revoked
    status, text, _ = await respond(session, chatgpt, auth(tokens["access_token"], ACCOUNT))
    assert status == 401 and error_code(text) == "invalid_token"
    status, body = await refresh(session, chatgpt, tokens["refresh_token"])
    assert status == 401 and body["error"]["code"] == "refresh_token_invalidated"
    with pytest.raises(KeyError):
        chatgpt.revoke("acct-unknown")


async def test_rejecting_account_gets_usage_limit_429(chatgpt, session) -> None:
    """An account in rejecting gets 429 usage_limit_reached with its quota headers, no turn."""
    token = chatgpt.add_login(ACCOUNT, plan="plus")["tokens"]["access_token"]
    chatgpt.codex_headers[ACCOUNT] = codex_headers(
        primary=100, secondary=50, primary_reset_after=900, secondary_reset_after=9000
    )
    chatgpt.rejecting.add(ACCOUNT)
    status, text, response = await respond(session, chatgpt, auth(token, ACCOUNT))
    assert status == 429
    error = json.loads(text)["error"]
    assert error["type"] == "usage_limit_reached" and error["plan_type"] == "plus"
    assert error["resets_in_seconds"] == 900 and error["resets_at"] == int(START) + 900
    assert response.headers["x-codex-primary-used-percent"] == "100"
    assert chatgpt.emitted == [] and chatgpt.throttled == chatgpt.requests


async def test_models_endpoint_checks_auth_and_bills_nothing(chatgpt, session) -> None:
    """GET /backend-api/codex/models needs the login like responses and consumes no turn."""
    token = chatgpt.add_login(ACCOUNT)["tokens"]["access_token"]
    chatgpt.add(Turn(text="kept"))
    url = chatgpt.base_url + CODEX_MODELS + "?client_version=0.169.0"
    async with session.get(url, headers=auth(token, ACCOUNT)) as response:
        assert response.status == 200
        assert {"slug": "gpt-5-codex"} in (await response.json())["models"]
    async with session.get(url, headers=auth("placeholder", ACCOUNT)) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "invalid_token"
    assert chatgpt.emitted == [] and list(chatgpt.script) == [Turn(text="kept")]


async def test_other_paths_are_404(chatgpt, session) -> None:
    """Paths the Codex backend does not serve (and a WebSocket attempt) answer 404."""
    token = chatgpt.add_login(ACCOUNT)["tokens"]["access_token"]
    async with session.post(
        chatgpt.base_url + "/v1/responses", json={}, headers=auth(token, ACCOUNT)
    ) as response:
        assert response.status == 404
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await session.ws_connect(chatgpt.base_url + CODEX_RESPONSES, headers=auth(token, ACCOUNT))
    assert caught.value.status == 404
    assert chatgpt.emitted == []


# --- Refresh ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
async def test_refresh_rotates_all_tokens(chatgpt, session, chatgpt_clock, form) -> None:
    """A current refresh token (JSON or form body) rotates access, refresh and id tokens."""
    old = chatgpt.add_login(ACCOUNT)["tokens"]
    chatgpt_clock.now = START + 4000  # the old access token has expired
    status, body = await refresh(session, chatgpt, old["refresh_token"], form=form)
    assert status == 200
    assert set(body) == {"id_token", "access_token", "refresh_token", "expires_in"}
    assert body["expires_in"] == 3600
    assert all(body[k] != old[k] for k in ("id_token", "access_token", "refresh_token"))
    assert jwt_claims(body["access_token"])["exp"] == int(START) + 4000 + 3600
    assert jwt_claims(body["id_token"])[AUTH_CLAIM]["chatgpt_account_id"] == ACCOUNT
    login = chatgpt.login(ACCOUNT)
    assert (login.access_token, login.refresh_token) == (
        body["access_token"],
        body["refresh_token"],
    )
    assert chatgpt.refreshes == 1
    (attempt,) = chatgpt.refresh_log
    assert attempt.outcome == "rotated" and attempt.form is form
    assert attempt.client_id == CLIENT_ID and attempt.account_id == ACCOUNT
    assert attempt.reason == "unauthorized_recovery"
    status, _, _ = await respond(session, chatgpt, auth(body["access_token"], ACCOUNT))
    assert status == 200
    status, text, _ = await respond(session, chatgpt, auth(old["access_token"], ACCOUNT))
    assert status == 401 and error_code(text) == "invalid_token"


async def test_reused_refresh_token_revokes_the_login(chatgpt, session) -> None:
    """Replaying a rotated refresh token gets refresh_token_reused and kills the login."""
    old = chatgpt.add_login(ACCOUNT)["tokens"]
    _, new = await refresh(session, chatgpt, old["refresh_token"])
    status, body = await refresh(session, chatgpt, old["refresh_token"])
    assert status == 401
    assert body == {
        "error": {
            "message": (
                "Your refresh token has already been used to generate a new access token. "
                "Please try signing in again."
            ),
            "type": "invalid_request_error",
            "code": "refresh_token_reused",
            "param": None,
        }
    }
    assert chatgpt.login(ACCOUNT).revoked and chatgpt.refreshes == 1
    status, text, _ = await respond(session, chatgpt, auth(new["access_token"], ACCOUNT))
    assert status == 401 and error_code(text) == "invalid_token"
    status, body = await refresh(session, chatgpt, new["refresh_token"])
    assert status == 401 and body["error"]["code"] == "refresh_token_invalidated"
    assert [a.outcome for a in chatgpt.refresh_log] == ["rotated", "reused", "invalidated"]


async def test_reuse_revokes_only_that_login(chatgpt, session) -> None:
    """Another account's login survives one account's refresh token reuse."""
    first = chatgpt.add_login(ACCOUNT)["tokens"]
    second = chatgpt.add_login(OTHER)["tokens"]
    await refresh(session, chatgpt, first["refresh_token"])
    await refresh(session, chatgpt, first["refresh_token"])
    status, _, _ = await respond(session, chatgpt, auth(second["access_token"], OTHER))
    assert status == 200 and not chatgpt.login(OTHER).revoked


async def test_unknown_refresh_token_is_invalidated(chatgpt, session) -> None:
    """A refresh token the fake never issued gets 401 refresh_token_invalidated."""
    chatgpt.add_login(ACCOUNT)
    status, body = await refresh(session, chatgpt, "rt_placeholder")
    assert status == 401 and body["error"]["code"] == "refresh_token_invalidated"
    assert chatgpt.refreshes == 0 and not chatgpt.login(ACCOUNT).revoked


@pytest.mark.parametrize(
    "fields",
    [
        {"grant_type": "refresh_token", "client_id": CLIENT_ID},
        {"grant_type": "refresh_token", "refresh_token": "RT"},
        {"refresh_token": "RT", "client_id": CLIENT_ID},
        {"grant_type": "password", "refresh_token": "RT", "client_id": CLIENT_ID},
    ],
    ids=["no-token", "no-client", "no-grant", "wrong-grant"],
)
async def test_malformed_refresh_is_400(chatgpt, session, fields) -> None:
    """A refresh missing a field or with another grant type gets 400 and rotates nothing."""
    token = chatgpt.add_login(ACCOUNT)["tokens"]["refresh_token"]
    sent = {k: token if v == "RT" else v for k, v in fields.items()}
    async with session.post(chatgpt.base_url + TOKEN_PATH, json=sent) as response:
        assert response.status == 400
        assert (await response.json())["error"]["type"] == "invalid_request_error"
    assert chatgpt.refreshes == 0 and chatgpt.login(ACCOUNT).refresh_token == token
    assert chatgpt.refresh_log[0].outcome == "malformed"


async def test_concurrent_refreshes_with_one_token_rotate_once(chatgpt, session) -> None:
    """Eight concurrent refreshes of one token: exactly one rotates, the rest are reuse."""
    token = chatgpt.add_login(ACCOUNT)["tokens"]["refresh_token"]
    results = await asyncio.gather(*(refresh(session, chatgpt, token) for _ in range(8)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [401] * 7
    codes = {body["error"]["code"] for status, body in results if status == 401}
    assert codes == {"refresh_token_reused"}
    assert chatgpt.refreshes == 1
    assert chatgpt.login(ACCOUNT).revoked  # the reuse revoked the login, as the real one does
