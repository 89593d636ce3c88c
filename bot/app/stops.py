"""The order the app stops its parts in, and what it has to stop so far.

Each part is added as it is made, so a start cut short (the state dir locked, a connector
refused, a stop asked for while standby) stops what it made and nothing more. :class:`Stop`
lists the parts in their stop order: the commands in flight finished first, then the rest
in reverse order of start — except that the scheduler and the spawn queue stop before the
dashboard and the connectors (nothing may answer through a stopped connector), and the
hosts' links stay up until the metering proxy has finished the requests they carry.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable

StopStep = Callable[[], Awaitable[object] | None]


class Stop(enum.Enum):
    """The app's parts, in the order :meth:`Stops.run` stops them."""

    IN_FLIGHT = enum.auto()  # the commands operators already asked for, finished
    CONTROL = enum.auto()  # no command taken from a shell; those in flight finished
    FOLLOWER = enum.auto()  # screens followed in chat
    RESTARTS = enum.auto()  # a `restart all` under way, cancelled
    FEED = enum.auto()  # what agents say, followed into their threads
    MCP_LINES = enum.auto()  # the MCP calls' lines waiting in a batch, posted at once
    PEER_TRAFFIC = enum.auto()  # what agents say to each other: the last folded notices told
    LINK_WATCH = enum.auto()  # no connector's outage told once they stop
    INBOUND = enum.auto()  # the connectors no longer read
    # Notices that waited on an answer cut short: after what was read while stopping.
    ORDERING = enum.auto()
    # A job that fired now (a schedule, the watchdog's notices) would answer through a
    # stopped connector.
    SCHEDULER = enum.auto()
    QUEUE = enum.auto()
    TASKS = enum.auto()  # no task whose wait is over started once the queue stops
    HANDOFFS = enum.auto()  # no task handed on started once the tasks stop; they wait
    POSTBOX = enum.auto()  # no message delivered once the tasks stop; queued ones wait
    DASHBOARD = enum.auto()  # its streams closed before what they show stops
    FORGES = enum.auto()  # no event taken, no forge run moved, once the webhooks are shut
    FORGE_CLIENTS = enum.auto()  # the forges' APIs, once nothing calls them
    CONNECTORS = enum.auto()
    FLEET = enum.auto()
    MCP = enum.auto()  # the MCP door's sessions and stdio servers, once no run uses them
    REPOS = enum.auto()  # no ready checkout made once no run can start
    SANDBOXES = enum.auto()  # the doors of locked agents; they reopen on reattach
    METERING = enum.auto()  # every metered request written before the ledger closes
    BUDGETS = enum.auto()  # limit notices a request caused
    RUN_CAPS = enum.auto()
    ACCOUNTS = enum.auto()  # and what the accounts learned
    HOSTS = enum.auto()
    HEARTBEATS = enum.auto()
    STANDBY = enum.auto()  # the lease released: a standby takes over at once
    LEDGER = enum.auto()
    LOCK = enum.auto()


class Stops:
    """The stop of each part made so far, run once in the order of :class:`Stop`."""

    def __init__(self) -> None:
        self._steps: dict[Stop, StopStep] = {}

    def add(self, part: Stop, step: StopStep) -> None:
        """Stop ``part`` with ``step`` (a coroutine function, or a plain one)."""
        if part in self._steps:
            raise RuntimeError(f"the app's {part.name.lower()} is already to be stopped")
        self._steps[part] = step

    async def run(self) -> None:
        """Stop every part added, in order; a step that raises leaves the rest unstopped."""
        for part in Stop:
            step = self._steps.pop(part, None)
            if step is None:
                continue
            result = step()
            if inspect.isawaitable(result):
                await result
