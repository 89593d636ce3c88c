"""What the approvals service's tests share: a service over the test's real ledger whose
``test`` channel records what its CLI is told, and one call that opens an ask of run 7 of
agent ``coder`` as a session driver would."""

from __future__ import annotations

import pytest

from fleet.approvals.service import Approvals
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalRequest, Ask
from fleet.timing.clock import ManualClock

CHANNEL = "test"


async def opened(approvals: Approvals, ask: Ask, **kw: object) -> ApprovalRequest:
    """``ask`` opened for run 7 of ``coder`` (``max_open`` 3 unless ``kw`` says otherwise)."""
    args: dict[str, object] = {
        "agent": "coder",
        "run_id": 7,
        "channel": CHANNEL,
        "ask": ask,
        "wait_seconds": 60.0,
        "max_open": 3,
        "starter": "@sam:example.org",
    }
    args.update(kw)
    return await approvals.open(**args)  # type: ignore[arg-type]


@pytest.fixture
def told() -> list[ApprovalRequest]:
    """What the CLI of the ``test`` channel was told, in order."""
    return []


@pytest.fixture
async def approvals(ledger: Ledger, clock: ManualClock, told: list[ApprovalRequest]) -> Approvals:
    service = Approvals(ledger.approvals, clock)

    async def deliver(request: ApprovalRequest) -> None:
        told.append(request)

    await service.register(CHANNEL, deliver)
    return service
