"""The forge runs a concurrency cap held, when the fleet's spawn queue gives them their
turn (:class:`QueuedRuns`, the queue's listener for the ``forge`` origin): the run of the
entry — still queued, its issue still open — starts as any forge run does (its prompt made
from the issue as it is then), its turn the queue's, and its status comment says it
started; one ended meanwhile (its issue closed) is dropped; one its budget or the fleet
turns away stays queued on its issue saying why, tried again by the watch round."""

from __future__ import annotations

import logging

from fleet.errors import FleetwardenError
from fleet.forge.fleet_launcher import FleetLauncher
from fleet.forge.launcher import LaunchRefused
from fleet.forge.runs.starts import RunStarts
from fleet.ledger import QueuedSpawn
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.supervisor.admission.queue import Launch

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
