"""The ``queue`` and ``cancel`` commands: what waits in the spawn queue and why (read-only,
viewer role), and dropping an entry (operator role)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.commands.family import Family, command
from bot.commands.grammar import ArgSpec, CommandSpec
from bot.commands.handlers.spawn_queue import SpawnQueue
from bot.commands.request import Request
from bot.render import fleet as render
from fleet.ledger import QueuedSpawn

QUEUE = CommandSpec(
    name="queue",
    summary="List the launches waiting for a free slot or for their budget, and why.",
    description=(
        "A `spawn` beyond a concurrency cap (`limits.max_running`, or `max_running` on an "
        "account or a budget) waits here, as does one a queued budget deferred. Each entry "
        "shows its number, place, agent, runtime, who asked, why it waits, since when and "
        "(when deferred) not before when. Entries start oldest first when a slot frees, as "
        "the person who asked, in the room they asked in; they survive a restart."
    ),
    examples=("queue",),
)

CANCEL = CommandSpec(
    name="cancel",
    summary="Drop a waiting launch from the queue.",
    args=(ArgSpec("ID", "The entry's number as `queue` shows it, or an agent's name."),),
    control=True,
    description=(
        "Removes the entry, or every entry waiting for that agent: it will not start. An "
        "entry being started at this moment can no longer be cancelled."
    ),
    examples=("cancel 3", "cancel coder-2"),
)

EMPTY = "Nothing is queued: every launch asked for has started."


class QueueCommands(Family):
    """The ``queue`` and ``cancel`` handlers over the app's :class:`SpawnQueue`."""

    def __init__(self, queue: SpawnQueue) -> None:
        self._queue = queue

    @command(QUEUE)
    async def queue(self, req: Request) -> str:
        return render_queue(await self._queue.entries(), req.message.timestamp)

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


def _since(at: datetime, now: datetime) -> str:
    return f"{at:%H:%M} UTC ({render.duration(max((now - at).total_seconds(), 0.0))} ago)"
