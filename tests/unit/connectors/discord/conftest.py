"""The Discord connector tests' shared fixture: the simulated gateway bot."""

from __future__ import annotations

import pytest

from connectors.discord.gateway import Gateway
from tests.unit.discord_world import quicken_settling


@pytest.fixture
def simcord_bot(monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """The client simcord's ``simcord_env`` logs in: the connector's own, fresh per test."""
    quicken_settling(monkeypatch)
    return Gateway()
