"""What the fake Slack's own tests share: the real slack_sdk Web API client pointed at a
running fake (:func:`web_client`), and a check that the schemas are built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import SlackServer, judge

__all__ = ["need_schemas", "web_client"]


def need_schemas() -> None:
    """Fail (never skip) when tests/slack_data.sh has not built Slack's schemas."""
    if not judge.have_schemas():
        pytest.fail(f"{judge.SCHEMAS} is missing: run `bash tests/slack_data.sh`", pytrace=False)


@asynccontextmanager
async def web_client(server: SlackServer, token: str | None) -> AsyncIterator[AsyncWebClient]:
    """slack_sdk's AsyncWebClient with ``token``, its session closed afterwards; no retry
    handlers, so a 429 reaches the test."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=token, base_url=server.api_base, session=session)
        client.retry_handlers = []
        yield client
