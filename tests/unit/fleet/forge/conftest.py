"""The forge tests' shared fixture: the work rig over a real ledger and a manual clock."""

from __future__ import annotations

import pytest

from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import WorkRig


@pytest.fixture
def rig(ledger: Ledger, clock: ManualClock) -> WorkRig:
    return WorkRig.make(ledger, clock)
