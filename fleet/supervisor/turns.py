"""Waiting for an agent's turn to be over, as the fleet tells it: :class:`Turns`, one fleet
listener for everyone who waits, each wait with a deadline and gone once it is over.

A turn is over at the end of a live session's turn when its session waits for the next one
(:attr:`~fleet.events.EventKind.TURN_OVER`, state ``idle``; one whose process ends with the
turn is over at that end, and one whose next turn began at once is not over), when the
agent's run ends or the watchdog gives up on it (``ENDED``, ``GAVE_UP``), or when its run is
paused (``FROZEN``: words sent to it thaw it). No clock is polled: whoever waits sleeps until
one of these is told, or its deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fleet.events import EventKind, FleetEvent, Listener
from fleet.model import AgentState

Check = Callable[[], Awaitable[bool]]
"""Whether the turn is over already (asked once the wait has begun, so no end is missed)."""
OVER = frozenset({EventKind.ENDED, EventKind.GAVE_UP, EventKind.FROZEN})
"""The kinds that end a turn whatever their state; a TURN_OVER ends it when the session
waits for its next turn."""


def ends_turn(event: FleetEvent) -> bool:
    """Whether ``event`` tells that its agent's turn is over (see the module)."""
    if event.kind is EventKind.TURN_OVER:
        return event.state is AgentState.IDLE
    return event.kind in OVER


class Turns:
    """Awaits the ends of agents' turns, told by the fleet's events."""

    def __init__(self, subscribe: Callable[[Listener], None]) -> None:
        """``subscribe``: the fleet's (:meth:`~fleet.supervisor.fleet.Fleet.subscribe`),
        called once: every wait shares the one listener."""
        self._waits: dict[str, set[asyncio.Future[FleetEvent]]] = {}
        subscribe(self.hear)

    async def hear(self, event: FleetEvent) -> None:
        """A fleet listener: whoever waits on ``event``'s agent's turn is woken if it is
        over."""
        if not ends_turn(event):
            return
        for waiter in self._waits.get(event.agent, ()):
            if not waiter.done():
                waiter.set_result(event)

    def waiting(self) -> dict[str, int]:
        """How many wait on each agent's turn now."""
        return {agent: len(waits) for agent, waits in self._waits.items()}

    async def over(self, agent: str, *, within: float, now: Check | None = None) -> bool:
        """Once ``agent``'s turn under way is over — or at once when ``now`` says it is
        already —; whether it was before ``within`` seconds passed."""
        waiter: asyncio.Future[FleetEvent] = asyncio.get_running_loop().create_future()
        waits = self._waits.setdefault(agent, set())
        waits.add(waiter)
        try:
            if now is not None and await now():
                return True
            done, _ = await asyncio.wait({waiter}, timeout=max(within, 0.0))
            return bool(done)
        finally:
            waits.discard(waiter)
            if not waits and self._waits.get(agent) is waits:
                del self._waits[agent]
