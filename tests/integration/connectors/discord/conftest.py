"""The Discord connector room's shared fixture: a started fake Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.discord.server import FakeDiscord


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server
