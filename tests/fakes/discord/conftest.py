"""The fixtures of the fake Discord's own tests: the started fake, with discord.py pointed at
it, and a real client logged in to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import yarl

from tests.fakes.discord.client import Bot, discord, run, shut
from tests.fakes.discord.server import FakeDiscord


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """A started fake with discord.py's REST base and gateway URL pointed at it."""
    async with FakeDiscord() as server:
        # A plain Client never asks /gateway/bot: both globals must be patched.
        monkeypatch.setattr(discord.http.Route, "BASE", server.api_base)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url)
        )
        yield server


@pytest.fixture
async def discord_client(fake: FakeDiscord) -> AsyncIterator[Bot]:
    """A real discord.py client logged in to the fake and ready."""
    client = Bot()
    task = await run(client, fake.token)
    try:
        assert client.ready.is_set(), "on_ready never fired"
        yield client
    finally:
        assert await shut(client, task) is None
