"""What the scheduler's tests share: a scheduler that is shut down after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from scheduler.jobs import FleetScheduler


@pytest.fixture
async def scheduler() -> AsyncIterator[FleetScheduler[Any]]:
    """A new scheduler, not started: each test starts it with the context its jobs need."""
    made: FleetScheduler[Any] = FleetScheduler()
    yield made
    await made.shutdown()
