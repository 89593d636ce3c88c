"""The forge runs a concurrency cap held, when the fleet's spawn queue gives them their
turn (:class:`QueuedRuns`, the queue's listener for the ``forge`` origin): the run of the
entry — still queued, its issue still open — starts as any forge run does (its prompt made
from the issue as it is then), its turn the queue's, and its status comment says it
started; one ended meanwhile (its issue closed) is dropped; one its budget or the fleet
turns away stays queued on its issue saying why, back in its place in the queue. A forge
run an older version kept queued in the forge store alone (it had a second queue) is
written into the spawn queue once at start (:func:`queue_left_runs`)."""

from __future__ import annotations

import logging

from fleet.errors import FleetwardenError
from fleet.forge.fleet_launcher import FleetLauncher
from fleet.forge.launcher import LaunchRefused
from fleet.forge.runs.starts import RunStarts
from fleet.ledger import QueuedSpawn, SpawnAsk
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.repos.hook.policy import Issue
from fleet.supervisor.admission.queue import Launch, LaunchQueue
from fleet.supervisor.admission.request import LaunchRequest

log = logging.getLogger(__name__)


class QueuedRuns:
    """Forge runs started from the spawn queue, and told on their issue."""

    def __init__(self, *, forge: ForgeStore, starts: RunStarts, launcher: FleetLauncher) -> None:
        self._forge = forge
        self._starts = starts
        self._launcher = launcher

    def ready(self, entry: QueuedSpawn) -> bool:
        return True

    async def start(self, entry: QueuedSpawn, launch: Launch) -> None:
        """Start the forge run ``entry`` holds, if it still waits (``launch``, the held
        request's, is not used: the run's prompt is made anew from its issue)."""
        record = await self._waiting(entry)
        if record is None:
            return
        async with self._starts.lock(record.forge, record.slug, record.issue):
            record = await self._waiting(entry)  # as it is now, under its issue's lock
            if record is None:
                return
            # Started as any forge run starts, its prompt made from the issue as it is now
            # (comments made while it waited included), its slot the queue's turn.
            try:
                outcome = await self._starts.launch(record, own_turn=True)
            except FleetwardenError as exc:  # the forge unreachable: its turn comes again
                refused = exc if isinstance(exc, LaunchRefused) else LaunchRefused(str(exc))
                outcome = await self._starts.keep_queued(record, refused.public, refused)
        log.info("forge run %d of %s, queued #%d: %s", record.id, record.agent, entry.id,
                 outcome)  # fmt: skip

    async def _waiting(self, entry: QueuedSpawn) -> ForgeRunRecord | None:
        """The forge run ``entry`` is, while it is still queued (not ended, not started)."""
        try:
            key = int(entry.ref or "")
        except ValueError:
            return None
        record = await self._forge.forge_run(key)
        if record is None or record.ended_at is not None:
            return None
        return record if ForgeRunState(record.state) is ForgeRunState.QUEUED else None


async def queue_left_runs(forge: ForgeStore, launches: LaunchQueue) -> int:
    """At start, before queued launches start: each forge run left queued in the forge
    store with no place in the spawn queue (kept so by an older version) written there, in
    its run's order, saying why it waited; how many were."""
    placed = {e.ref for e in await launches.entries() if e.origin == "forge"}
    left = [
        r
        for r in await forge.forge_runs()
        if ForgeRunState(r.state) is ForgeRunState.QUEUED and str(r.id) not in placed
    ]
    for record in left:
        by = f"@{record.requester} on {record.forge}"
        ask = SpawnAsk(record.agent, "", by, "", "", "", origin="forge", ref=str(record.id))
        request = LaunchRequest(
            record.agent,
            origin="forge",
            by=by,
            repo=record.repo,
            branch=record.branch,
            issue=Issue(str(record.slug), record.issue),
            collect=False,
        )
        await launches.waiter(ask)(request, record.summary or "waiting for its turn", None)
    if left:
        log.info("%d queued forge run(s) placed in the spawn queue", len(left))
    return len(left)
