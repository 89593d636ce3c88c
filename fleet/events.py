"""What happens to an agent that operators may want to hear about: a :class:`FleetEvent`, its
kinds, and the listeners that hear them (the supervisor's, the watchdog's, a run cap's, the
chat's and the dashboard's). A turn's end, a freeze and a thaw are told only to those who
wait on them (:data:`QUIET`): never said, shown or counted."""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fleet.model import AgentState
from fleet.names import AgentName

_log = logging.getLogger(__name__)


class EventKind(enum.StrEnum):
    STARTED = "started"
    ENDED = "ended"
    REATTACHED = "reattached"
    STALLED = "stalled"
    RESTARTED = "restarted"
    GAVE_UP = "gave up"
    REFUSED = "refused"  # the roster's own launch (autostart) could not start
    # A live session's turn ended: state IDLE when the session waits for its next turn,
    # RUNNING when the next one began at once or its process ends with it (ENDED follows).
    TURN_OVER = "turn over"
    FROZEN = "frozen"  # its run was paused (a cutoff, a person, the forge's `on_done`)
    THAWED = "thawed"  # its paused run goes on (`resume`, a raised cap, a new budget window)


QUIET = frozenset({EventKind.TURN_OVER, EventKind.FROZEN, EventKind.THAWED})
"""The kinds for those who wait on an agent's turn (tasks, the postbox, the forge) or show
a run's state (a Slack agent session): no notice, page or count of them."""


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """Something that happened to an agent that operators may want to hear about."""

    agent: AgentName
    kind: EventKind
    state: AgentState
    message: str
    by_operator: bool
    run_id: int | None = None  # the run it is about, when it is about one
    # The run ended while whoever launched it still waited on its first moments: the
    # answer to that launch is told first.
    at_once: bool = False


Listener = Callable[[FleetEvent], Awaitable[None]]


class Listeners:
    """Who hears the fleet's events, made before everything that tells them (the run keeper,
    the live sessions, the supervisor) and everything that listens: one listener failing
    never keeps the event from the others."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` for every :class:`FleetEvent` from now on."""
        self._listeners.append(listener)

    async def emit(self, event: FleetEvent) -> None:
        for listener in list(self._listeners):
            try:
                await listener(event)
            except Exception:
                _log.exception("fleet event listener failed for %s", event.agent)
