"""The fake provider's strict credential check, per-credential quota headers and 429s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.provider.bodies import anthropic, body_for
from tests.fakes.provider.server import (
    FAKE_KEY,
    OAUTH_BETA,
    Accepted,
    FakeProvider,
    Turn,
    unified_headers,
)

API_KEY = "sk-ant-api03-real"
OTHER_KEY = "sk-ant-api03-second"
OAUTH = "sk-ant-oat01-real"
OPENAI_KEY = "sk-proj-real"
ACCEPTED = Accepted(
    api_keys=frozenset({API_KEY, OTHER_KEY, OPENAI_KEY}), oauth_tokens=frozenset({OAUTH})
)
VERSION = {"anthropic-version": "2023-06-01"}
OAUTH_HEADERS = {"Authorization": f"Bearer {OAUTH}", "anthropic-beta": f"x-1,{OAUTH_BETA}"}


@pytest.fixture
async def strict() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(accept=ACCEPTED) as fake:
        yield fake


@pytest.fixture
async def credentials_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def post(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    body = body_for(url) if body is None else body
    async with session.post(url, json=body, headers=headers) as response:
        return response.status, await response.json(), response


def anthropic_401(message: str, body: dict[str, Any]) -> None:
    assert body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": message},
        "request_id": body["request_id"],
    }
    assert body["request_id"].startswith("req_")


# --- Anthropic ------------------------------------------------------------------------


async def test_anthropic_api_key_is_accepted_and_recorded(strict, credentials_session) -> None:
    """A listed x-api-key is served, and the request records it as its credential."""
    strict.add(Turn(text="served"))
    status, body, _ = await post(
        credentials_session, f"{strict.base_url}/v1/messages", {"x-api-key": API_KEY, **VERSION}
    )
    assert status == 200 and body["content"][0]["text"] == "served"
    assert strict.requests[0].credential == API_KEY
    assert strict.refused == []


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-api-key": "sk-ant-placeholder"}, "invalid x-api-key"),
        ({}, "x-api-key header is required"),
        (
            {"x-api-key": API_KEY, **OAUTH_HEADERS},
            "Send either x-api-key or Authorization, not both.",
        ),
        (
            {"Authorization": f"Bearer {API_KEY}", "anthropic-beta": OAUTH_BETA},
            "Invalid bearer token",
        ),
        (
            {"Authorization": "Bearer placeholder", "anthropic-beta": OAUTH_BETA},
            "Invalid bearer token",
        ),
    ],
)
async def test_anthropic_bad_credentials_get_401_and_keep_the_turn(
    strict, credentials_session, headers, message
) -> None:
    """A wrong, missing, doubled or placeholder credential gets Anthropic's 401; no turn used."""
    strict.add(Turn(text="kept"))
    status, body, response = await post(
        credentials_session, f"{strict.base_url}/v1/messages", headers
    )
    assert status == 401
    assert response.headers["request-id"] == body["request_id"]
    anthropic_401(message, body)
    assert strict.refused == strict.requests and strict.requests[0].credential is None
    assert strict.emitted == []
    status, body, _ = await post(
        credentials_session, f"{strict.base_url}/v1/messages", {"x-api-key": API_KEY}
    )
    assert status == 200 and body["content"][0]["text"] == "kept"


async def test_oauth_token_with_beta_flag_is_accepted(strict, credentials_session) -> None:
    """A subscription token as Bearer plus the oauth beta flag is served and recorded."""
    status, _, _ = await post(
        credentials_session, f"{strict.base_url}/v1/messages?beta=true", OAUTH_HEADERS
    )
    assert status == 200
    assert strict.requests[0].credential == OAUTH


async def test_oauth_token_without_beta_flag_is_refused(strict, credentials_session) -> None:
    """The same token without the oauth beta flag gets the real API's OAuth refusal."""
    headers = {"Authorization": f"Bearer {OAUTH}", "anthropic-beta": "prompt-caching-2024-07-31"}
    status, body, _ = await post(credentials_session, f"{strict.base_url}/v1/messages", headers)
    assert status == 401
    anthropic_401("OAuth authentication is currently not supported.", body)


async def test_oauth_token_is_no_api_key(strict, credentials_session) -> None:
    """A subscription token sent as x-api-key is refused: it is not an API key."""
    status, body, _ = await post(
        credentials_session, f"{strict.base_url}/v1/messages", {"x-api-key": OAUTH}
    )
    assert status == 401
    anthropic_401("invalid x-api-key", body)


async def test_other_anthropic_paths_need_a_credential(strict, credentials_session) -> None:
    """count_tokens and the Anthropic models list are checked like model requests."""
    url = f"{strict.base_url}/v1/messages/count_tokens"
    status, body, _ = await post(credentials_session, url, {"x-api-key": "nope"})
    assert status == 401 and body["error"]["type"] == "authentication_error"
    status, body, _ = await post(credentials_session, url, {"x-api-key": API_KEY})
    assert status == 200 and body == {"input_tokens": 12}
    async with credentials_session.get(f"{strict.base_url}/v1/models", headers=VERSION) as response:
        assert response.status == 401
        anthropic_401("x-api-key header is required", await response.json())
    headers = {**VERSION, **OAUTH_HEADERS}
    async with credentials_session.get(f"{strict.base_url}/v1/models", headers=headers) as response:
        assert response.status == 200 and (await response.json())["data"]


# --- OpenAI ---------------------------------------------------------------------------


async def test_openai_bearer_key_is_accepted(strict, credentials_session) -> None:
    """An OpenAI-style Bearer key in api_keys is served on Responses and Chat Completions."""
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    for path in ("/v1/responses", "/v1/chat/completions"):
        status, _, _ = await post(credentials_session, strict.base_url + path, headers)
        assert status == 200
    assert [r.credential for r in strict.requests] == [OPENAI_KEY, OPENAI_KEY]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer sk-placeholder"},
        {"Authorization": OPENAI_KEY},
        {"Authorization": f"Basic {OPENAI_KEY}"},
        {"Authorization": f"Bearer {OAUTH}"},
    ],
)
async def test_openai_wrong_key_gets_invalid_api_key(strict, credentials_session, headers) -> None:
    """A wrong, placeholder or non-Bearer key gets OpenAI's invalid_api_key 401, no turn."""
    status, body, response = await post(
        credentials_session, f"{strict.base_url}/v1/responses", headers
    )
    assert status == 401 and response.headers["Content-Type"] == "application/json"
    assert body == {
        "error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "param": None,
        }
    }
    assert strict.emitted == [] and len(strict.refused) == 1


async def test_openai_missing_key_is_refused(strict, credentials_session) -> None:
    """No Authorization at all gets OpenAI's "You didn't provide an API key" 401."""
    status, body, _ = await post(credentials_session, f"{strict.base_url}/v1/chat/completions", {})
    assert status == 401
    assert body["error"]["message"].startswith("You didn't provide an API key.")
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] is None


async def test_openai_anthropic_key_header_does_not_count(strict, credentials_session) -> None:
    """x-api-key is no credential for OpenAI paths, even with a valid key in it."""
    status, body, _ = await post(
        credentials_session, f"{strict.base_url}/v1/responses", {"x-api-key": API_KEY}
    )
    assert status == 401 and "error" in body and "type" not in body


async def test_openai_models_need_a_key(strict, credentials_session) -> None:
    """GET /v1/models without anthropic-version is checked as an OpenAI request."""
    async with credentials_session.get(f"{strict.base_url}/v1/models") as response:
        assert response.status == 401
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    async with credentials_session.get(f"{strict.base_url}/v1/models", headers=headers) as response:
        assert response.status == 200 and (await response.json())["object"] == "list"


# --- Quota headers and rejection ------------------------------------------------------


async def test_quota_headers_follow_the_credential(strict, credentials_session) -> None:
    """Each credential's quota headers come back on its answers, success and error alike."""
    first = unified_headers(five_hour=0.42, seven_day=0.1, reset_5h=1000, reset_7d=2000)
    second = unified_headers(
        five_hour=0.2, seven_day=0.95, status="allowed_warning", reset_5h=3000, reset_7d=4000
    )
    strict.quota_headers[API_KEY] = first
    strict.quota_headers[OAUTH] = second
    url = f"{strict.base_url}/v1/messages"
    async with credentials_session.post(
        url, json=anthropic(stream=True), headers={"x-api-key": API_KEY}
    ) as r:
        await r.read()
        assert r.status == 200
        assert {k: r.headers[k] for k in first} == first
    assert first == {
        "anthropic-ratelimit-unified-status": "allowed",
        "anthropic-ratelimit-unified-reset": "1000",
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-5h-utilization": "0.42",
        "anthropic-ratelimit-unified-5h-reset": "1000",
        "anthropic-ratelimit-unified-5h-status": "allowed",
        "anthropic-ratelimit-unified-7d-utilization": "0.1",
        "anthropic-ratelimit-unified-7d-reset": "2000",
        "anthropic-ratelimit-unified-7d-status": "allowed",
    }
    strict.add(Turn(error_status=529))
    status, _, response = await post(credentials_session, url, OAUTH_HEADERS)
    assert status == 529
    assert response.headers["anthropic-ratelimit-unified-representative-claim"] == "seven_day"
    assert response.headers["anthropic-ratelimit-unified-7d-utilization"] == "0.95"
    assert response.headers["anthropic-ratelimit-unified-7d-status"] == "allowed_warning"
    assert response.headers["anthropic-ratelimit-unified-5h-status"] == "allowed"
    assert response.headers["anthropic-ratelimit-unified-reset"] == "4000"
    status, _, response = await post(credentials_session, url, {"x-api-key": OTHER_KEY})
    assert status == 200
    assert "anthropic-ratelimit-unified-status" not in response.headers
    status, _, response = await post(credentials_session, url, {"x-api-key": "wrong"})
    assert status == 401 and "anthropic-ratelimit-unified-status" not in response.headers


async def test_rejecting_answers_anthropic_429_with_quota_headers(
    strict, credentials_session
) -> None:
    """A rejected credential gets Anthropic's rate_limit_error 429, its headers, no turn."""
    strict.quota_headers[OAUTH] = unified_headers(
        five_hour=1.0, seven_day=0.5, status="rejected", reset_5h=5000, reset_7d=6000
    )
    strict.rejecting.add(OAUTH)
    strict.add(Turn(text="later"))
    status, body, response = await post(
        credentials_session, f"{strict.base_url}/v1/messages", OAUTH_HEADERS
    )
    assert status == 429
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert body["error"]["message"] and body["request_id"].startswith("req_")
    assert response.headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert response.headers["anthropic-ratelimit-unified-5h-status"] == "rejected"
    assert strict.throttled == strict.requests and strict.requests[0].credential == OAUTH
    assert strict.emitted == []
    status, body, _ = await post(
        credentials_session, f"{strict.base_url}/v1/messages", {"x-api-key": API_KEY}
    )
    assert status == 200 and body["content"][0]["text"] == "later"
    strict.rejecting.discard(OAUTH)
    status, _, _ = await post(credentials_session, f"{strict.base_url}/v1/messages", OAUTH_HEADERS)
    assert status == 200


async def test_rejecting_answers_openai_429_on_openai_paths(strict, credentials_session) -> None:
    """On an OpenAI path a rejected key gets OpenAI's rate_limit_exceeded 429 shape."""
    strict.rejecting.add(OPENAI_KEY)
    strict.quota_headers[OPENAI_KEY] = {"x-ratelimit-remaining-requests": "0"}
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    status, body, response = await post(
        credentials_session, f"{strict.base_url}/v1/responses", headers
    )
    assert status == 429
    assert body["error"]["code"] == "rate_limit_exceeded" and "type" not in body
    assert response.headers["x-ratelimit-remaining-requests"] == "0"


async def test_turn_header_wins_over_quota_header(strict, credentials_session) -> None:
    """A scripted turn's header overrides the credential's quota header of the same name."""
    strict.quota_headers[API_KEY] = {"x-q": "quota", "x-r": "quota"}
    strict.add(Turn(headers={"x-q": "turn"}))
    _, _, response = await post(
        credentials_session, f"{strict.base_url}/v1/messages", {"x-api-key": API_KEY}
    )
    assert response.headers["x-q"] == "turn" and response.headers["x-r"] == "quota"


async def test_default_accepts_only_the_fake_key(credentials_session) -> None:
    """Without accept, FAKE_KEY is the one credential served; any other is refused."""
    async with FakeProvider() as fake:
        url = f"{fake.base_url}/v1/messages"
        status, body, _ = await post(credentials_session, url, {"x-api-key": "sk-ant-anything"})
        assert status == 401
        anthropic_401("invalid x-api-key", body)
        status, _, _ = await post(credentials_session, url, {})
        assert status == 401
        status, _, _ = await post(credentials_session, url, {"x-api-key": FAKE_KEY})
        assert status == 200
        openai = f"{fake.base_url}/v1/responses"
        status, body, _ = await post(credentials_session, openai, {"Authorization": "Bearer ghp_x"})
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        status, _, _ = await post(
            credentials_session, openai, {"Authorization": f"Bearer {FAKE_KEY}"}
        )
        assert status == 200
    assert [r.credential for r in fake.requests] == [None, None, FAKE_KEY, None, FAKE_KEY]
    assert len(fake.refused) == 3


async def test_lenient_credentials_serve_anything(credentials_session) -> None:
    """lenient_credentials serves any credential (or none) and records none."""
    async with FakeProvider(lenient_credentials=True) as fake:
        fake.rejecting.add("k")
        fake.quota_headers["k"] = {"x-q": "1"}
        status, _, response = await post(
            credentials_session, f"{fake.base_url}/v1/messages", {"x-api-key": "k"}
        )
        assert status == 200 and "x-q" not in response.headers
        status, _, _ = await post(credentials_session, f"{fake.base_url}/v1/responses", {})
        assert status == 200
    assert [r.credential for r in fake.requests] == [None, None]


def test_accept_and_lenient_credentials_exclude_each_other() -> None:
    """Asking for both a credential list and leniency is a mistake, refused at once."""
    with pytest.raises(ValueError, match="exclude"):
        FakeProvider(accept=ACCEPTED, lenient_credentials=True)
