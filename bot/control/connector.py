"""The shell as the connector its commands came on (:data:`~bot.control.answers.SHELL`),
for what answers them later, when no shell waits any more: a launch a ``fleetwarden
spawn`` queued starts when a slot frees, as its sender, through this connector (the spawn
queue finds an entry's connector by name, and would hold it forever without one). What is
posted here is written to the log; it has no room of its own for notices, no threads, and
its inbound stream is never read (the control socket is its way in)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator

from bot.commands.routing.sources import SHELL
from connectors.base import (
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    SendResult,
    ThreadId,
)
from connectors.defaults import ConnectorDefaults
from connectors.errors import ThreadsUnsupported
from connectors.health import LinkHealth
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)


class ShellConnector(ConnectorDefaults):
    """Answers given after the shell went away, logged."""

    def __init__(self, clock: Clock) -> None:
        self._ids = itertools.count(1)
        self._link = LinkHealth(SHELL, clock)
        self._link.connected()  # up while the control socket listens

    @property
    def link(self) -> LinkHealth:
        return self._link

    @property
    def name(self) -> str:
        return SHELL

    @property
    def home_room(self) -> RoomId | None:
        return None  # fleet-wide notices go to chat

    @property
    def has_threads(self) -> bool:
        return False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def inbound(self) -> AsyncIterator[InboundMessage]:
        return
        yield  # never: a shell's commands come through the control socket

    async def send(self, message: OutboundMessage) -> SendResult:
        log.info("answer to a shell command, after the shell left: %s", message.markdown)
        return SendResult((EventId(f"shell:{next(self._ids)}"),))

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        log.info("answer to a shell command, edited: %s", markdown)

    async def health(self) -> ConnectorHealth:
        return ConnectorHealth(True, "the control socket")

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        raise ThreadsUnsupported("a shell has no threads")
