"""The held starts: a task whose wait is over (the tasks it waited for done) or a pipeline's
stage whose stages before it are through is started in the background as a
:class:`~fleet.tasks.asked.HeldStart` — the launch request built here, origin ``task`` or
``pipeline``, for the asker kept with the task — by the starters listening (the chat's:
:class:`bot.commands.handlers.work.starts.ChatTaskStarts`); a start none of them made sends
the task back to ``todo``, saying how to start it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fleet.ledger.records.tasks import TaskRecord
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.tasks.asked import HeldOrigin, HeldStart, held_start

log = logging.getLogger(__name__)

Starter = Callable[[HeldStart], Awaitable[bool]]
"""Start a held task as the request it carries, for its asker where they asked; whether it
was started there."""


class HeldStarts:
    """The starts of held tasks under way, and who makes them."""

    def __init__(self, tasks: TasksStore) -> None:
        self._tasks = tasks
        self._starters: list[Starter] = []
        self._starts: set[asyncio.Task[None]] = set()

    def listen(self, starter: Starter) -> None:
        """Start the held tasks through ``starter`` (the chat's, once the commands are
        made)."""
        self._starters.append(starter)

    def start(self, task: TaskRecord, origin: HeldOrigin = "task") -> None:
        """Start ``task`` from ``origin`` where its start was asked for, without waiting
        for it."""
        start = asyncio.create_task(self._start(task, origin), name=f"task-{task.id}")
        self._starts.add(start)
        start.add_done_callback(self._starts.discard)

    async def _start(self, task: TaskRecord, origin: HeldOrigin) -> None:
        """Start ``task`` through the first starter that takes it; else back to ``todo``.
        The task is read again first: what it was told since (a pipeline's hand-off in its
        body) is its prompt."""
        task = await self._tasks.task(task.id) or task
        held = held_start(task, origin)
        if held is not None and await self._started(held):
            return
        why = f"what it waited for is done: `task start {task.id}` starts it"
        await self._tasks.move(task.id, "todo", why, came_from=("queued",))

    async def _started(self, held: HeldStart) -> bool:
        for starter in self._starters:
            try:
                if await starter(held):
                    return True
            except Exception:
                log.exception("could not start task %s whose wait was over", held.task.id)
        return False

    async def settled(self) -> None:
        """Once the starts under way now are done."""
        while self._starts:
            await asyncio.gather(*list(self._starts), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel the starts under way; the tasks stay ``queued``, settled at the next
        start."""
        starts = list(self._starts)
        for start in starts:
            start.cancel()
        await asyncio.gather(*starts, return_exceptions=True)
