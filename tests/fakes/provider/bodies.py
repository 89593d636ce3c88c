"""Complete request bodies for each API the fake provider serves, and a client middleware
that sends the fake's default key the way each API takes it."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.fakes.provider.server import FAKE_KEY, is_anthropic
from tests.fakes.provider.sse import Api

__all__ = [
    "CHAT",
    "CLAUDE",
    "GPT",
    "anthropic",
    "body_for",
    "chat",
    "key_headers",
    "responses",
    "send_key",
]

CLAUDE, GPT, CHAT = "claude-sonnet-4-5", "gpt-5-codex", "gpt-4o-mini"  # served by default
HELLO = [{"role": "user", "content": "hi"}]


def anthropic(**extra: Any) -> dict[str, Any]:
    """A Messages body with every required field."""
    return {"model": CLAUDE, "max_tokens": 1024, "messages": HELLO, **extra}


def responses(**extra: Any) -> dict[str, Any]:
    """A Responses body with every required field."""
    return {"model": GPT, "input": "hi", **extra}


def chat(**extra: Any) -> dict[str, Any]:
    """A Chat Completions body with every required field."""
    return {"model": CHAT, "messages": HELLO, **extra}


def body_for(path: str, **extra: Any) -> dict[str, Any]:
    """A complete body for whichever API the path names."""
    if "/v1/messages" in path:
        return anthropic(**extra)
    return responses(**extra) if "/responses" in path else chat(**extra)


def key_headers(api: Api, key: str = FAKE_KEY) -> dict[str, str]:
    """The header carrying ``key`` as the API takes it: x-api-key for Anthropic, else Bearer."""
    return {"x-api-key": key} if api == "anthropic" else {"Authorization": f"Bearer {key}"}


async def send_key(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Send the fake's key as each API takes it: x-api-key for Anthropic, else Bearer."""
    if is_anthropic(request.url.path, request.headers):
        request.headers.setdefault("x-api-key", FAKE_KEY)
    else:
        request.headers.setdefault("Authorization", f"Bearer {FAKE_KEY}")
    return await handler(request)
