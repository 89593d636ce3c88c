"""The caps' stage: every concurrency cap (:class:`~fleet.supervisor.admission.slots.Slots`)
— a launch they hold waits in the spawn queue (when it may wait there); one they let go
holds its slot until its launch returns. An operator's restart they hold is not queued; the
watchdog's restart is not asked of them, as ever: it goes on with the task whose run held
its slot (when a queued launch took the slot an ended run left, it may pass a cap by one)."""

from __future__ import annotations

from fleet.ledger import QueuedSpawn
from fleet.supervisor.admission.request import LaunchRequest, Queued
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.admission.stages.chain import Admitting, Verdict, Wait


class CapStage:
    """The concurrency caps. ``slots``: ``None`` where no cap is kept."""

    name = "caps"

    def __init__(self, slots: Slots | None) -> None:
        self.slots = slots

    async def admit(self, admitting: Admitting) -> Verdict:
        slots, request, wait = self.slots, admitting.request, admitting.wait
        if slots is None or request.origin == "watchdog":
            return None
        # A restart the caps hold is not queued: the operator is told to `spawn`, which waits.
        queues = wait is not None and request.origin != "restart"
        enqueue = _Enqueue(wait, request) if wait is not None and queues else None
        held = await slots.take(
            request.agent,
            request.runtime,
            request.account,
            enqueue,
            forge=request.origin == "forge",
        )
        if held is not None:
            return Queued(held.why, held.entry, already=held.already)
        admitting.slot = True
        return None

    def release(self, admitting: Admitting) -> None:
        """The slot ``admitting`` held, let go once its launch returned."""
        if admitting.slot and self.slots is not None:
            self.slots.release(admitting.request.agent)


class _Enqueue:
    """The held launch written to the queue, given why it waits."""

    def __init__(self, wait: Wait, request: LaunchRequest) -> None:
        self._wait, self._request = wait, request

    async def __call__(self, why: str) -> QueuedSpawn:
        return await self._wait(self._request, why, None)
