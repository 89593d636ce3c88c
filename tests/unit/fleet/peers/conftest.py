"""The review stage tests' shared fixture: the review rig over a real ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.ledger import Ledger
from tests.unit.fleet.peers.review_rig import Rig


@pytest.fixture
def rig(ledger: Ledger, tmp_path: Path) -> Rig:
    return Rig(ledger, tmp_path)
