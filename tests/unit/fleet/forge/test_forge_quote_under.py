"""A forge's `quote_under:` is carried on its runs' launches, the limit the admission holds
their quotes to (what a refusal over it says on the issue is test_fleet_launcher's)."""

from __future__ import annotations

import pytest

from fleet.clock import ManualClock
from fleet.ledger import Ledger
from tests.unit.fleet.forge.work_rig import WorkRig, forge_entry


@pytest.fixture
def rig(ledger: Ledger, clock: ManualClock) -> WorkRig:
    return WorkRig.make(ledger, clock)


async def test_the_forge_s_quote_under_is_carried_on_the_launch(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A forge entry's `quote_under:` is the limit its runs' launches carry; none: none."""
    limited = WorkRig.make(ledger, clock, entry=forge_entry(quote_under=2.5))
    await limited.started()
    assert limited.launcher.quote_unders == [2.5]


async def test_a_forge_without_quote_under_launches_without_a_limit(rig: WorkRig) -> None:
    await rig.started()
    assert rig.launcher.quote_unders == [None]
