"""The fake provider refuses a malformed body and an unknown model as each real API does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.provider.bodies import anthropic, chat, responses, send_key
from tests.fakes.provider.chatgpt import CODEX_RESPONSES, FakeChatGpt
from tests.fakes.provider.server import FakeProvider, Turn

GITHUB_TOKEN = "ghp_" + "A" * 36  # a model named like a credential is no model
MESSAGES, RESPONSES, CHAT = "/v1/messages", "/v1/responses", "/v1/chat/completions"
COUNT_TOKENS = "/v1/messages/count_tokens"


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(default=Turn(text="kept")) as fake:
        yield fake


@pytest.fixture
async def refusals_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(middlewares=(send_key,)) as client:
        yield client


async def send(
    session: aiohttp.ClientSession, url: str, body: Any, *, raw: bool = False
) -> tuple[int, Any]:
    """POST a JSON body (or, with ``raw``, the bytes as given); the status and JSON answer."""
    sent: dict[str, Any] = {"data": body} if raw else {"json": body}
    headers = {"Content-Type": "application/json"}
    async with session.post(url, headers=headers, **sent) as response:
        assert response.headers["Content-Type"] == "application/json"
        return response.status, await response.json()


def anthropic_error(kind: str, message: str, body: Any) -> None:
    assert body == {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": body["request_id"],
    }


def openai_error(message: str, param: str | None, code: str | None, body: Any) -> None:
    assert body == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }


# --- Anthropic ------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["model", "messages", "max_tokens"])
async def test_anthropic_missing_field_is_400(provider, refusals_session, missing) -> None:
    """A Messages body without model, messages or max_tokens gets invalid_request_error."""
    body = anthropic()
    del body[missing]
    status, answer = await send(refusals_session, provider.base_url + MESSAGES, body)
    assert status == 400
    anthropic_error("invalid_request_error", f"{missing}: Field required", answer)
    assert provider.invalid == provider.requests and provider.emitted == []


@pytest.mark.parametrize("raw", [b"", b"{not json", b'["model"]'])
async def test_anthropic_body_that_is_no_object_is_400(provider, refusals_session, raw) -> None:
    """A body that is empty, not JSON or not an object is 400, never served as {}."""
    status, answer = await send(refusals_session, provider.base_url + MESSAGES, raw, raw=True)
    assert status == 400 and answer["error"]["type"] == "invalid_request_error"
    assert provider.emitted == []


async def test_anthropic_unknown_model_is_404(provider, refusals_session) -> None:
    """A model the fake does not serve gets not_found_error naming it, and keeps the turn."""
    status, answer = await send(
        refusals_session, provider.base_url + MESSAGES, anthropic(model=GITHUB_TOKEN)
    )
    assert status == 404
    anthropic_error("not_found_error", f"model: {GITHUB_TOKEN}", answer)
    status, answer = await send(refusals_session, provider.base_url + MESSAGES, anthropic())
    assert status == 200 and answer["content"][0]["text"] == "kept"


async def test_anthropic_model_must_be_a_string(provider, refusals_session) -> None:
    """A model that is not a string is 400, not served as the first model."""
    status, answer = await send(refusals_session, provider.base_url + MESSAGES, anthropic(model=7))
    assert status == 400
    anthropic_error("invalid_request_error", "model: Input should be a valid string", answer)


async def test_count_tokens_checks_model_and_messages(provider, refusals_session) -> None:
    """count_tokens needs model and messages (not max_tokens) and a served model."""
    url = provider.base_url + COUNT_TOKENS
    status, answer = await send(refusals_session, url, {"model": "claude-sonnet-4-5"})
    assert status == 400
    anthropic_error("invalid_request_error", "messages: Field required", answer)
    status, _ = await send(refusals_session, url, {"model": "nope", "messages": []})
    assert status == 404
    status, answer = await send(
        refusals_session, url, {"model": "claude-sonnet-4-5", "messages": []}
    )
    assert status == 200 and answer == {"input_tokens": 12}


# --- OpenAI ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "missing"),
    [
        (RESPONSES, {"input": "hi"}, "model"),
        (RESPONSES, {"model": "gpt-5-codex"}, "input"),
        (CHAT, {"messages": []}, "model"),
        (CHAT, {"model": "gpt-4o-mini"}, "messages"),
    ],
)
async def test_openai_missing_parameter_is_400(
    provider, refusals_session, path, body, missing
) -> None:
    """A missing model, input or messages gets missing_required_parameter naming it."""
    status, answer = await send(refusals_session, provider.base_url + path, body)
    assert status == 400
    message = f"Missing required parameter: '{missing}'."
    openai_error(message, missing, "missing_required_parameter", answer)
    assert provider.emitted == []


@pytest.mark.parametrize("path", [RESPONSES, CHAT])
async def test_openai_body_that_is_not_json_is_400(provider, refusals_session, path) -> None:
    """A body that is not JSON gets OpenAI's could-not-parse 400, with no param or code."""
    status, answer = await send(refusals_session, provider.base_url + path, b"model=gpt", raw=True)
    assert status == 400
    assert answer["error"]["message"].startswith("We could not parse the JSON body")
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] is None and answer["error"]["code"] is None


@pytest.mark.parametrize(("path", "body"), [(RESPONSES, responses()), (CHAT, chat())])
async def test_openai_unknown_model_is_404(provider, refusals_session, path, body) -> None:
    """A model the fake does not serve gets model_not_found, as the real API answers."""
    status, answer = await send(
        refusals_session, provider.base_url + path, {**body, "model": GITHUB_TOKEN}
    )
    assert status == 404
    message = f"The model `{GITHUB_TOKEN}` does not exist or you do not have access to it."
    openai_error(message, None, "model_not_found", answer)


# --- Leniency by name -----------------------------------------------------------------


async def test_any_model_serves_an_unknown_model(refusals_session) -> None:
    """any_model serves any model name, but still refuses a body missing a field."""
    async with FakeProvider(any_model=True) as fake:
        status, answer = await send(
            refusals_session, fake.base_url + MESSAGES, anthropic(model="x-1")
        )
        assert status == 200 and answer["model"] == "x-1"
        status, _ = await send(refusals_session, fake.base_url + MESSAGES, {"model": "x-1"})
        assert status == 400


async def test_lenient_body_serves_a_body_that_is_not_json(refusals_session) -> None:
    """lenient_body serves a body that is not JSON (as {}) but still refuses unknown models."""
    async with FakeProvider(lenient_body=True) as fake:
        status, _ = await send(refusals_session, fake.base_url + CHAT, b"not json", raw=True)
        assert status == 200
        status, _ = await send(refusals_session, fake.base_url + CHAT, {"model": "nope"})
        assert status == 404


# --- ChatGPT's Codex backend ----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (
            {"model": "gpt-4o"},
            "The 'gpt-4o' model is not supported when using Codex with a ChatGPT account.",
        ),
        ({"model": None}, "Model is required"),
        ({"input": "hi"}, "Input must be a list"),
    ],
)
async def test_codex_backend_refuses_with_detail(change, detail) -> None:
    """The Codex backend answers a body it refuses with 400 and FastAPI's {"detail": …}."""
    body = {"model": "gpt-5-codex", "instructions": "Be brief.", "input": [], "stream": True}
    body = {k: v for k, v in {**body, **change}.items() if v is not None}
    async with FakeChatGpt(default=Turn(text="kept")) as fake, aiohttp.ClientSession() as http:
        login = fake.add_login("acct-1")["tokens"]
        headers = {
            "Authorization": f"Bearer {login['access_token']}",
            "chatgpt-account-id": "acct-1",
        }
        async with http.post(fake.base_url + CODEX_RESPONSES, json=body, headers=headers) as r:
            assert r.status == 400 and await r.json() == {"detail": detail}
    assert fake.invalid == fake.requests and fake.emitted == []
