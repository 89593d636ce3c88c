"""A Discord message the connector cannot take, with the real discord.py client against
the fake Discord on loopback: reported with its id (discord.py alone would only log it),
and the next message still comes in."""

from __future__ import annotations

import asyncio

import discord
import pytest

from connectors.discord import connector as discord_connector
from connectors.discord.connector import DiscordConnector
from connectors.receiving import ReceiveFailures
from tests.fakes.discord.server import FakeDiscord
from tests.integration.connectors.discord.test_discord_connector import (
    TOKEN_ENV,
    Book,
    config,
    next_message,
)

pytestmark = pytest.mark.integration


async def test_a_message_whose_translation_raises_is_reported_and_the_next_comes_in(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failing message's id reaches the app's record (and its counter); the connector
    goes on with the next message."""
    real = discord_connector.from_message

    def choking(message: discord.Message, *args: object, **kwargs: object) -> object:
        if message.content == "!poison":
            raise KeyError("member")
        return real(message, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(discord_connector, "from_message", choking)
    counted: list[str] = []
    reported = asyncio.Event()

    def count(connector: str) -> None:
        counted.append(connector)
        reported.set()

    failures = ReceiveFailures(on_failure=count, keeps_failing=1)
    made = DiscordConnector(
        config(fake), threads=Book(), environ={TOKEN_ENV: fake.token}, failures=failures
    )
    await made.start()
    try:
        poison = await fake.post_user_message(fake.control_channel_id, "ann", "!poison")
        await fake.post_user_message(fake.control_channel_id, "ann", "!ps")
        got = await next_message(made)
        assert got.text == "!ps"
        await asyncio.wait_for(reported.wait(), 5)
        assert counted == ["discord"]
        [failing] = failures.failing()
        assert failing.event_id == str(poison.id) and "KeyError" in failing.error
    finally:
        await made.stop()
