"""Starting the real Slack connector against the fake Slack when something is set up
wrong: each refusal names what to fix, and never shows a token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.errors import ConnectorAuthError, ConnectorSetupError
from connectors.slack.config import API_BASE_ENV, SlackConfig
from connectors.slack.connector import SlackConnector
from tests.fakes.slack import SlackServer, SlackWorld, slack_server
from tests.fakes.slack.client import need_schemas
from tests.integration.connectors.slack.rig import APP_ENV, BOT_ENV, slack_rig

pytestmark = pytest.mark.integration


class NoThreads:
    """A ledger that has no thread bound (start-up never asks it)."""

    async def topic_for_thread(self, connector: str, room: str, thread_id: str) -> str | None:
        return None


def connector(server: SlackServer, channel: str, env: dict[str, str]) -> SlackConnector:
    config = SlackConfig(bot_token_env=BOT_ENV, app_token_env=APP_ENV, channel_id=channel)
    return SlackConnector(
        config, threads=NoThreads(), environ={API_BASE_ENV: server.api_base, **env}
    )


async def start_fails(world: SlackWorld, channel: str, env: dict[str, Any]) -> BaseException:
    async with slack_server(world) as server:
        slack = connector(server, channel, env)
        with pytest.raises((ConnectorSetupError, ConnectorAuthError)) as refused:
            await slack.start()
        await slack.stop()
        assert not [c for c in world.calls if c.method == "apps.connections.open"]
        return refused.value


async def test_swapped_tokens_are_refused_by_their_prefix() -> None:
    """The app token in the bot token's variable (and the other way round): refused
    before any call, naming the variables and the prefixes, never the values."""
    need_schemas()
    world = SlackWorld()
    channel = world.add_channel("ops")
    env = {BOT_ENV: world.app_token, APP_ENV: world.bot_token}
    error = await start_fails(world, channel, env)
    said = str(error)
    assert BOT_ENV in said and "xoxb-" in said and APP_ENV in said and "xapp-" in said
    assert world.bot_token not in said and world.app_token not in said
    assert world.calls == []


async def test_a_refused_bot_token_is_an_auth_error() -> None:
    """A bot token Slack does not know stops the start with what to do."""
    need_schemas()
    world = SlackWorld()
    channel = world.add_channel("ops")
    env = {BOT_ENV: "xoxb-0-not-a-real-one", APP_ENV: world.app_token}
    error = await start_fails(world, channel, env)
    assert isinstance(error, ConnectorAuthError) and BOT_ENV in str(error)


async def test_a_refused_app_token_names_its_variable() -> None:
    """An app-level token Slack does not know: an auth error naming its variable."""
    need_schemas()
    world = SlackWorld()
    channel = world.add_channel("ops")
    async with slack_server(world) as server:
        env = {BOT_ENV: world.bot_token, APP_ENV: "xapp-1-A0-0-not-a-real-one"}
        slack = connector(server, channel, env)
        with pytest.raises(ConnectorAuthError, match=APP_ENV) as refused:
            await slack.start()
        await slack.stop()
        assert "not-a-real-one" not in str(refused.value)


async def test_a_channel_the_app_is_not_in_says_invite_it() -> None:
    """A control channel the app was not invited to is a setup error saying so."""
    need_schemas()
    world = SlackWorld()
    channel = world.add_channel("ops", bot_member=False)
    env = {BOT_ENV: world.bot_token, APP_ENV: world.app_token}
    error = await start_fails(world, channel, env)
    assert isinstance(error, ConnectorSetupError) and "invite" in str(error)


async def test_stop_is_safe_to_repeat(tmp_path: Path) -> None:
    """A stopped connector stops again quietly and refuses to send."""
    from connectors.base import OutboundMessage, RoomId
    from connectors.errors import ConnectorError

    async with slack_rig(tmp_path) as rig:
        await rig.connector.stop()
        await rig.connector.stop()
        with pytest.raises(ConnectorError):
            await rig.connector.send(OutboundMessage(room=RoomId(rig.channel), markdown="x"))
        assert not (await rig.connector.health()).ok
