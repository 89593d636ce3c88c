"""The ledger tests' shared fixture: two ledgers over one database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.timing.clock import ManualClock


@pytest.fixture
async def pair(
    ledger_location: LedgerLocation, clock: ManualClock
) -> AsyncIterator[tuple[Ledger, Ledger]]:
    """Two ledgers on the same database, each with its own connections (two orchestrators,
    or two processes on one SQLite file)."""
    first = await Ledger.connect(ledger_location, clock)
    try:
        second = await Ledger.connect(ledger_location, clock)
        try:
            yield first, second
        finally:
            await second.close()
    finally:
        await first.close()
