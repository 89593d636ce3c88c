"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.clock import ManualClock
from fleet.ledger import Ledger
from tests.unit.chat_fakes import T0, Calls, FakeConnector


@pytest.fixture
def clock() -> ManualClock:
    """A clock standing at :data:`T0` until a test moves it."""
    return ManualClock(T0)


@pytest.fixture
async def ledger(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_path / "ledger.db", clock)
    yield opened
    await opened.close()


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def chat() -> FakeConnector:
    return FakeConnector()
