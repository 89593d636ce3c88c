"""The ``queue`` and ``cancel`` commands: what waits in the spawn queue and why, and the
forge runs waiting for their agent or their budget (read-only, viewer role); dropping an
entry of the spawn queue (operator role)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from bot.commands.family import Family, command
from bot.commands.handlers.launches.spawn_queue import SpawnQueue
from bot.commands.handlers.launches.specs import CANCEL, QUEUE
from bot.commands.routing.request import Request
from bot.render import fleet as render
from bot.render import forge as render_forge
from bot.text.agent_text import said
from fleet.ledger import QueuedSpawn
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState
from fleet.supervisor.admission.owners import ForgeRuns

EMPTY = "Nothing is queued: every launch asked for has started."
WHY_CAP = 200  # characters of why a forge run waits


class QueueCommands(Family):
    """The ``queue`` and ``cancel`` handlers over the app's :class:`SpawnQueue`, and the
    forge runs waiting (``forge_runs``: the live ones; ``None`` without forges)."""

    def __init__(self, queue: SpawnQueue, forge_runs: ForgeRuns | None = None) -> None:
        self._queue = queue
        self._forge_runs = forge_runs

    @command(QUEUE)
    async def queue(self, req: Request) -> str:
        now = req.message.timestamp
        waiting = []
        if self._forge_runs is not None:  # a forge run waits in the spawn queue, its words there
            places = {e.ref: e for e in await self._queue.launches.entries() if e.origin == "forge"}
            waiting = [
                replace(r, summary=places[str(r.id)].reason)
                for r in await self._forge_runs(None)
                if ForgeRunState(r.state) is ForgeRunState.QUEUED and str(r.id) in places
            ]
        entries = await self._queue.entries()
        if not waiting:
            return render_queue(entries, now)
        forged = render_forge_waiting(waiting, now)
        return forged if not entries else f"{render_queue(entries, now)}\n\n{forged}"

    @command(CANCEL)
    async def cancel(self, req: Request) -> str:
        dropped = await self._queue.cancel(req.arg("ID"))
        names = ", ".join(f"#{e.id} ({e.agent})" for e in dropped)
        return f"Dropped from the queue: {names}. It will not start."


def render_queue(entries: Sequence[QueuedSpawn], now: datetime) -> str:
    """The ``queue`` answer: one row per entry, in the order they would start."""
    if not entries:
        return EMPTY
    rows = [
        [
            str(place),
            f"#{e.id}",
            e.agent,
            str(e.request.get("runtime") or "default"),
            f"{e.sender} on {e.connector}" if e.connector else e.sender,
            e.reason + (" (starting now)" if e.status == "starting" else ""),
            _since(e.queued_at, now),
            "—" if e.not_before is None else f"{e.not_before:%H:%M} UTC",
        ]
        for place, e in enumerate(entries, start=1)
    ]
    headers = ("#", "id", "agent", "runtime", "asked by", "why it waits", "since", "not before")
    return render.table(headers, rows)


def render_forge_waiting(runs: Sequence[ForgeRunRecord], now: datetime) -> str:
    """The forge runs waiting to start: one row each, the oldest first."""
    rows = [
        [
            render_forge.issue_link(r),
            r.agent,
            said(r.summary or "its agent is busy", WHY_CAP),
            _since(r.started_at, now),
        ]
        for r in runs
    ]
    plural = "s wait" if len(runs) != 1 else " waits"
    table = render.table(("issue", "agent", "why it waits", "since"), rows)
    return f"{len(runs)} forge run{plural} to start:\n\n{table}"


def _since(at: datetime, now: datetime) -> str:
    return f"{at:%H:%M} UTC ({render.duration(max((now - at).total_seconds(), 0.0))} ago)"
