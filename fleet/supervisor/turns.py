"""Waiting for an agent's turn to be over, as the fleet tells it: :class:`Turns`, one fleet
listener for everyone who waits, each wait with a deadline and gone once it is over.

A turn is over at the end of a live session's turn when its session waits for the next one
(:attr:`~fleet.events.EventKind.TURN_OVER`, state ``idle``; one whose process ends with the
turn is over at that end, and one whose next turn began at once is not over), when the
agent's run ends or the watchdog gives up on it (``ENDED``, ``GAVE_UP``), or when its run is
paused (``FROZEN``: words sent to it thaw it). No clock is polled: whoever waits sleeps until
one of these is told, or its deadline. A wait may name the run it waits on (an end told of
another run leaves it waiting) and start from a mark (:meth:`Turns.ends`) read while the turn
was under way: an end heard since makes it over at once, so none told before the wait began
is missed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fleet.events import EventKind, FleetEvent, Listener
from fleet.model import AgentState

Check = Callable[[], Awaitable[bool]]
"""Whether the turn is over already (asked once the wait has begun, so no end is missed)."""
OVER = frozenset({EventKind.ENDED, EventKind.GAVE_UP, EventKind.FROZEN})
"""The kinds that end a turn whatever their state; a TURN_OVER ends it when the session
waits for its next turn."""
KEPT_RUNS = 8
"""The runs of an agent whose ends are counted one by one (its newest ones)."""


def ends_turn(event: FleetEvent) -> bool:
    """Whether ``event`` tells that its agent's turn is over (see the module)."""
    if event.kind is EventKind.TURN_OVER:
        return event.state is AgentState.IDLE
    return event.kind in OVER


@dataclass
class _Heard:
    """The ends of one agent's turns heard so far, numbered as they came (1, 2, …)."""

    total: int = 0  # the newest end's number
    unnamed: int = 0  # the newest told of no run's (the watchdog giving up)
    runs: dict[int, int] = field(default_factory=dict)  # each newest run's newest end's
    floor: int = 0  # the newest end of the runs no longer kept

    def add(self, run_id: int | None) -> None:
        self.total += 1
        if run_id is None:
            self.unnamed = self.total
            return
        self.runs.pop(run_id, None)
        self.runs[run_id] = self.total  # the newest run last
        if len(self.runs) > KEPT_RUNS:  # the oldest goes: a mark on it moves to the floor
            self.floor = max(self.floor, self.runs.pop(next(iter(self.runs))))

    def mark(self, run_id: int | None) -> int:
        """The number of the newest end that ends a wait on ``run_id``'s turn (any run's,
        when None): it only grows, and grows with each such end."""
        if run_id is None:
            return self.total
        return max(self.runs.get(run_id, self.floor), self.unnamed)


class Turns:
    """Awaits the ends of agents' turns, told by the fleet's events."""

    def __init__(self, subscribe: Callable[[Listener], None]) -> None:
        """``subscribe``: the fleet's (:meth:`~fleet.supervisor.fleet.Fleet.subscribe`),
        called once: every wait shares the one listener."""
        self._waits: dict[str, dict[asyncio.Future[FleetEvent], int | None]] = {}
        self._heard: dict[str, _Heard] = {}
        subscribe(self.hear)

    async def hear(self, event: FleetEvent) -> None:
        """A fleet listener: whoever waits on ``event``'s agent's turn is woken if it is
        over (a wait naming another run than ``event``'s is not)."""
        if not ends_turn(event):
            return
        self._heard.setdefault(event.agent, _Heard()).add(event.run_id)
        for waiter, run_id in self._waits.get(event.agent, {}).items():
            if not waiter.done() and _same_run(run_id, event.run_id):
                waiter.set_result(event)

    def ends(self, agent: str, run_id: int | None = None) -> int:
        """A mark of the ends of ``agent``'s turns heard so far (those that end a wait on
        run ``run_id``, when named), for :meth:`over`'s ``since``: read while the turn is
        under way, before anything is awaited, no end told after it is missed."""
        heard = self._heard.get(agent)
        return 0 if heard is None else heard.mark(run_id)

    def waiting(self) -> dict[str, int]:
        """How many wait on each agent's turn now."""
        return {agent: len(waits) for agent, waits in self._waits.items()}

    async def over(
        self,
        agent: str,
        *,
        within: float,
        since: int | None = None,
        run_id: int | None = None,
        now: Check | None = None,
    ) -> bool:
        """Once ``agent``'s turn under way is over — or at once when an end was heard after
        the mark ``since`` (:meth:`ends`, of the same ``run_id``) or ``now`` says it is over
        already —; whether it was before ``within`` seconds passed. ``run_id``: the run
        waited on; an end told of another run does not end the wait."""
        waiter: asyncio.Future[FleetEvent] = asyncio.get_running_loop().create_future()
        waits = self._waits.setdefault(agent, {})
        waits[waiter] = run_id
        try:
            if since is not None and self.ends(agent, run_id) != since:
                return True
            if now is not None and await now():
                return True
            done, _ = await asyncio.wait({waiter}, timeout=max(within, 0.0))
            return bool(done)
        finally:
            waits.pop(waiter, None)
            if not waits and self._waits.get(agent) is waits:
                del self._waits[agent]


def _same_run(waited: int | None, told: int | None) -> bool:
    """Whether an end told of run ``told`` ends a wait on run ``waited`` (either unknown:
    it does)."""
    return waited is None or told is None or waited == told
