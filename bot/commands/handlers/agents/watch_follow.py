"""``watch NAME --follow``: the agent's screen posted again where the command was asked,
each time it changes, for a while.

It looks every :data:`FOLLOW_INTERVAL` seconds, :data:`FOLLOW_UPDATES` times at most (five
minutes), and stops early once the agent no longer runs. These are answers to a command, so
they go to the conversation it came from (its thread, or the agent's thread in that room),
not to every home room as a notice would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, Protocol

from bot.render import fleet as render
from bot.render.agents.transcript import transcript
from connectors.base import Connector, InboundMessage, OutboundMessage, ThreadId
from fleet.errors import FleetError
from fleet.supervisor.interfaces import FleetView

log = logging.getLogger(__name__)

FOLLOW_INTERVAL: Final = 10.0  # look this often...
FOLLOW_UPDATES: Final = 30  # ...this many times at most (5 minutes)


WATCH_ENTRIES: Final = 15  # of a headless agent's work that `watch` shows


async def agent_view(fleet: FleetView, name: str) -> str:
    """What ``watch`` shows of ``name``: a terminal agent's screen as it is now; for any
    other, its latest work read as lines (as ``logs`` shows it)."""
    if await fleet.outputs.on_terminal(name):
        return render.screen(name, await fleet.snapshot(name))
    read = await fleet.outputs.transcript(name, WATCH_ENTRIES)
    if not read.events:
        return f"**{name}** has done nothing readable yet (`logs {name} --raw` shows its output)."
    return f"**{name}** lately:\n\n{transcript(read.events, agent=name)}"


class TopicThread(Protocol):
    """Where a topic's thread is in a room (the ledger)."""

    async def thread_for_topic(self, connector: str, room: str, topic: str) -> str | None: ...


class ScreenFollower:
    """Owns the follow tasks: started by the ``watch`` handler, cancelled by :meth:`stop`."""

    def __init__(
        self,
        fleet: FleetView,
        threads: TopicThread,
        connector_named: Callable[[str], Connector | None],
    ) -> None:
        self._fleet = fleet
        self._threads = threads
        self._connector_named = connector_named
        self._tasks: set[asyncio.Task[None]] = set()

    def follow(self, message: InboundMessage, agent: str, first: str) -> None:
        """Start posting ``agent``'s view (:func:`agent_view`) where ``message`` came from,
        when it changes; ``first`` is the view already posted."""
        task = asyncio.create_task(self._updates(message, agent, first))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Cancel every follow and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _updates(self, message: InboundMessage, agent: str, last: str) -> None:
        connector = self._connector_named(message.connector)
        if connector is None:
            return
        for _ in range(FOLLOW_UPDATES):
            await asyncio.sleep(FOLLOW_INTERVAL)
            try:
                status = await self._fleet.status(agent)
                screen = await agent_view(self._fleet, agent)
            except FleetError:
                return
            if screen != last:
                last = screen
                thread = message.thread_id or await self._threads.thread_for_topic(
                    message.connector, message.room, agent
                )
                await connector.send(
                    OutboundMessage(
                        room=message.room,
                        markdown=screen,
                        thread_id=ThreadId(thread) if thread else None,
                    )
                )
            if not status.state.is_live:
                return
