"""The fake Slack's own tests' shared fixtures: a Slack world and the server playing it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.slack import SlackServer, SlackWorld, slack_server
from tests.fakes.slack.client import need_schemas


@pytest.fixture
async def server(world: SlackWorld) -> AsyncIterator[SlackServer]:
    async with slack_server(world) as running:
        yield running


@pytest.fixture
def world() -> SlackWorld:
    need_schemas()
    return SlackWorld()
