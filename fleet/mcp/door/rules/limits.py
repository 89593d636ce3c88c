"""The MCP door's caps on each agent, and what every session through it shares.

:class:`DoorLimits`: the sessions an agent holds with one server at once, the sessions it
may open with one server a minute, its requests at the door at once, and how long a
request's body may take. :class:`SessionGrounds`: where each session's server finds its
credentials, the hooks it asks and tells, where a stdio server's standard error goes, and
the clock its requests' times are read on."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TextIO

from fleet.mcp.hooks import McpHooks

MAX_SESSIONS: Final = 4
"""Sessions an agent holds with one server at once; a fifth ends the one used least
lately. A CLI run once a turn opens a session each turn and may never end it."""
OPENS: Final = 12
"""Sessions an agent may open with one server in :data:`OPENS_SECONDS` (each may start a
stdio server's process); one more is refused, and nothing is started for it."""
OPENS_SECONDS: Final = 60.0
MAX_IN_FLIGHT: Final = 32
"""Requests of one agent at the door at once (its open streams among them); past it, 429.
The door keeps its own count: the endpoint's cap of an agent's requests at once is its
heartbeats', which calls held open by a slow server must never crowd out."""
BODY_SECONDS: Final = 5.0
"""Seconds a request's body has to arrive whole."""


@dataclass(frozen=True, slots=True)
class DoorLimits:
    """The door's caps on each agent (see the constants above)."""

    max_sessions: int = MAX_SESSIONS
    opens: int = OPENS
    max_in_flight: int = MAX_IN_FLIGHT
    body_seconds: float = BODY_SECONDS


@dataclass(frozen=True, slots=True)
class SessionGrounds:
    """What every session through the door shares: ``environ``, where the servers'
    credentials are read; ``hooks``; ``errlog``, where stdio servers' standard error goes
    (nowhere by default); ``clock``, seconds on a clock that never goes backwards."""

    environ: Mapping[str, str]
    hooks: McpHooks = field(default_factory=McpHooks)
    errlog: TextIO | None = None
    clock: Callable[[], float] = time.monotonic
