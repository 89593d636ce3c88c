"""The one way to a chat service: each connector the app starts is wrapped in a
:class:`RedactingConnector`, so everything posted — a command's reply, a notice, a
``watch --follow`` update, a thread's first message — passes the redactor
(:mod:`fleet.redaction.redactor`) on its way, and no path can forget it.

Thread topics pass unchanged: they are agent names or fixed words, and the ledger binds
threads by them. Images are Fleetwarden's own charts. Attached files (a long diff) are
text: each is redacted as a text is (decoded as UTF-8, redacted, encoded again), its name
too, so no secret leaves in a file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Final

from connectors.base import (
    Attachment,
    Connector,
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    RunState,
    SendResult,
    ThreadId,
    UserId,
    safe_file_name,
)
from connectors.health import LinkHealth
from fleet.redaction.known import SecretSource
from fleet.redaction.redactor import Redactor

# A text this long is redacted in a worker thread, not on the event loop (it would hold
# the loop some milliseconds, with gitleaks' rules a few per 4 KiB: bench/redaction.py).
IN_THREAD_FROM: Final = 4 * 1024


class RedactingConnector:
    """``inner``, with every text it posts redacted first."""

    def __init__(
        self,
        inner: Connector,
        redactor: Redactor,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.inner = inner
        self._redactor = redactor
        self._on_failure = on_failure  # told the connector's name when a post fails

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def home_room(self) -> RoomId | None:
        return self.inner.home_room

    @property
    def has_threads(self) -> bool:
        return self.inner.has_threads

    @property
    def link(self) -> LinkHealth:
        return self.inner.link

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    def inbound(self) -> AsyncIterator[InboundMessage]:
        return self.inner.inbound()

    async def health(self) -> ConnectorHealth:
        return await self.inner.health()

    async def send(self, message: OutboundMessage) -> SendResult:
        redacted = replace(
            message,
            markdown=await self.redact(message.markdown),
            files=tuple([await self.redact_file(file) for file in message.files]),
        )
        async with self._counted():
            return await self.inner.send(redacted)

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        first = await self.redact(first_message)
        async with self._counted():
            return await self.inner.open_thread(room, topic, first)

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        redacted = await self.redact(markdown)
        async with self._counted():
            await self.inner.edit(room, event_id, redacted, thread)

    def can_send_private(self) -> bool:
        """Whether the connector can write to one person alone (a direct message)."""
        check = getattr(self.inner, "can_send_private", None)
        return bool(check()) if callable(check) else False

    async def send_private(self, user: UserId, markdown: str) -> bool:
        """``markdown``, redacted, to ``user`` alone; whether it was sent."""
        send = getattr(self.inner, "send_private", None)
        if send is None:
            return False
        redacted = await self.redact(markdown)
        async with self._counted():
            return bool(await send(user, redacted))

    @contextlib.asynccontextmanager
    async def _counted(self) -> AsyncIterator[None]:
        try:
            yield
        except asyncio.CancelledError:
            raise
        except Exception:
            if self._on_failure is not None:
                self._on_failure(self.inner.name)
            raise

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

    async def show_run_state(
        self, room: RoomId, thread: ThreadId, state: RunState, title: str
    ) -> None:
        await self.inner.show_run_state(room, thread, state, await self.redact(title))

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        return self.inner.message_link(room, event_id, thread)

    async def redact(self, text: str) -> str:
        """``text`` redacted with the secrets known now; a long one off the event loop."""
        redaction = self._redactor.snapshot()  # on the loop, where the sources change
        if len(text) < IN_THREAD_FROM:
            return redaction.apply(text)
        return await asyncio.to_thread(redaction.apply, text)

    async def redact_file(self, file: Attachment) -> Attachment:
        """``file`` with its text and its name redacted (cut again, should redaction have
        made it longer than a file may be)."""
        text = await self.redact(file.data.decode("utf-8", errors="replace"))
        name = await self.redact(file.name)
        if name != file.name:
            name = safe_file_name(name)
        return Attachment.of_text(name, text, file.mime)


def guard(
    connectors: Sequence[Connector],
    redactor: Redactor,
    sources: Iterable[object],
    *,
    on_failure: Callable[[str], None] | None = None,
) -> list[RedactingConnector]:
    """``connectors``, each wrapped; what holds secrets among ``sources`` and the connectors
    themselves (a chat login) becomes the redactor's source."""
    for held in (*sources, *connectors):
        if isinstance(held, SecretSource):
            redactor.add_source(held)
    return [RedactingConnector(connector, redactor, on_failure) for connector in connectors]
