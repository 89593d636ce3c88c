"""The one way to a chat service: each connector the app starts is wrapped in a
:class:`RedactingConnector`, so everything posted — a command's reply, a notice, a
``watch --follow`` update, a thread's first message — passes the redactor
(:mod:`fleet.redaction.redactor`) on its way, and no path can forget it.

Thread topics pass unchanged: they are agent names or fixed words, and the ledger binds
threads by them. Images are Fleetwarden's own charts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from typing import Final

from connectors.base import (
    Connector,
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    SendResult,
    ThreadId,
)
from fleet.redaction.known import SecretSource
from fleet.redaction.redactor import Redactor

# A text this long is redacted in a worker thread, not on the event loop (it would hold
# the loop some milliseconds, with gitleaks' rules a few per 4 KiB: bench/redaction.py).
IN_THREAD_FROM: Final = 4 * 1024


class RedactingConnector:
    """``inner``, with every text it posts redacted first."""

    def __init__(self, inner: Connector, redactor: Redactor) -> None:
        self.inner = inner
        self._redactor = redactor

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def home_room(self) -> RoomId | None:
        return self.inner.home_room

    @property
    def has_threads(self) -> bool:
        return self.inner.has_threads

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    def inbound(self) -> AsyncIterator[InboundMessage]:
        return self.inner.inbound()

    async def health(self) -> ConnectorHealth:
        return await self.inner.health()

    async def send(self, message: OutboundMessage) -> SendResult:
        return await self.inner.send(replace(message, markdown=await self.redact(message.markdown)))

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        return await self.inner.open_thread(room, topic, await self.redact(first_message))

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        await self.inner.edit(room, event_id, await self.redact(markdown), thread)

    def typing(
        self, room: RoomId, thread: ThreadId | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return self.inner.typing(room, thread)

    async def mark_read(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> None:
        await self.inner.mark_read(room, event_id, thread)

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        return self.inner.thread_link(room, thread)

    async def redact(self, text: str) -> str:
        """``text`` redacted with the secrets known now; a long one off the event loop."""
        redaction = self._redactor.snapshot()  # on the loop, where the sources change
        if len(text) < IN_THREAD_FROM:
            return redaction.apply(text)
        return await asyncio.to_thread(redaction.apply, text)


def guard(
    connectors: Sequence[Connector], redactor: Redactor, sources: Iterable[object]
) -> list[RedactingConnector]:
    """``connectors``, each wrapped; what holds secrets among ``sources`` and the connectors
    themselves (a chat login) becomes the redactor's source."""
    for held in (*sources, *connectors):
        if isinstance(held, SecretSource):
            redactor.add_source(held)
    return [RedactingConnector(connector, redactor) for connector in connectors]
