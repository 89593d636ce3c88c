"""What the fake Slack's own tests share: the real slack_sdk Web API client and slack_bolt
app pointed at a running fake, a bare Socket Mode websocket, and a check that the schemas
are built."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import SlackServer, SlackWorld, judge

__all__ = ["bolt_app", "need_schemas", "next_frame", "raw_socket", "web_client"]


def need_schemas() -> None:
    """Fail (never skip) when tests/slack_data.sh has not built Slack's schemas."""
    if not judge.have_schemas():
        pytest.fail(f"{judge.SCHEMAS} is missing: run `bash tests/slack_data.sh`", pytrace=False)


@asynccontextmanager
async def web_client(server: SlackServer, token: str | None) -> AsyncIterator[AsyncWebClient]:
    """slack_sdk's AsyncWebClient with ``token``, its session closed afterwards; no retry
    handlers, so a 429 reaches the test."""
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=token, base_url=server.api_base, session=session)
        client.retry_handlers = []
        yield client


@asynccontextmanager
async def raw_socket(
    server: SlackServer, app_token: str
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A bare Socket Mode websocket (no SDK): opened as Slack's SDKs open one, closed after."""
    async with web_client(server, None) as client:
        url = (await client.apps_connections_open(app_token=app_token))["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        yield ws


async def next_frame(ws: aiohttp.ClientWebSocketResponse, within: float = 10.0) -> dict[str, Any]:
    """The next JSON frame on ``ws`` (AssertionError if none comes ``within`` seconds)."""
    frame = await asyncio.wait_for(ws.receive(), timeout=within)
    if frame.type is not aiohttp.WSMsgType.TEXT:
        raise AssertionError(f"expected a text frame, got {frame.type.name}")
    loaded: dict[str, Any] = json.loads(frame.data)
    return loaded


@asynccontextmanager
async def bolt_app(
    server: SlackServer, world: SlackWorld
) -> AsyncIterator[tuple[AsyncApp, AsyncSocketModeHandler]]:
    """The real slack_bolt AsyncApp on Socket Mode against the fake; connect it with
    ``await handler.connect_async()``; closed afterwards, failure or not."""
    app = AsyncApp(client=AsyncWebClient(token=world.bot_token, base_url=server.api_base))
    handler = AsyncSocketModeHandler(app, world.app_token)
    try:
        yield app, handler
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
