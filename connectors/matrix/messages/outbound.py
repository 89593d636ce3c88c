"""Posting: markdown replies as split notices, images, files, thread roots, edits of the
bot's own messages; typing notices and read receipts.

Each event gets its own transaction id, kept across retries, so a send retried after
a lost response is not posted twice. Typing notices and receipts are tried once: they are
cosmetic, and a late one is worse than none.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nio

from connectors.base import Attachment, EventId, OutboundMessage, RoomId, SendResult, ThreadId
from connectors.errors import ConnectorError
from connectors.matrix import wire
from connectors.matrix.config import AlertStyle
from connectors.matrix.encryption.e2ee import Encryption
from connectors.matrix.messages import render
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

TYPING_SECONDS = 30
"""How long one typing notice lasts (the homeserver drops it after this)."""
TYPING_REFRESH_SECONDS = 20.0
"""How often a typing notice is renewed while the bot works: well before it lapses."""
ROOM_WAIT_SECONDS = 10.0
"""How long a send waits for the sync loop to show a room joined a moment ago."""


class Outbound:
    """The write side of the connector."""

    def __init__(
        self,
        client: nio.AsyncClient,
        clock: Clock,
        *,
        on_call: tuple[str, ...] = (),
        alert_style: Callable[[str], AlertStyle] = lambda room: "mention",
    ) -> None:
        """``on_call``: who an alert naming nobody mentions; ``alert_style``: how alerts
        are posted in a room (:attr:`connectors.matrix.config.MatrixConfig.alerts`)."""
        self._client = client
        self._clock = clock
        self.encryption: Encryption | None = None  # set once the crypto store is open
        self._on_call = on_call
        self._alert_style = alert_style

    async def send(self, message: OutboundMessage) -> SendResult:
        """Post ``message``'s markdown (split to fit), then its images, then its files; all
        event ids.
        An alert (or a message naming users) notifies, as the room's alert style says."""
        contents = render.notices(
            message.markdown, thread_id=message.thread_id, in_reply_to=message.in_reply_to
        )
        style = self._alert_style(message.room)
        if (message.alert or message.mentions) and style != "notice":
            users = (message.mentions or self._on_call) if style == "mention" else ()
            contents = render.alerting(contents, users)
        ids = [await self._post(message.room, content) for content in contents]
        for path in message.images:
            ids.append(await self.send_image(message.room, path, thread_id=message.thread_id))
        for file in message.files:
            ids.append(await self.send_file(message.room, file, thread_id=message.thread_id))
        return SendResult(event_ids=tuple(ids))

    async def edit(self, room: RoomId, event_id: EventId, markdown: str) -> None:
        """Replace the text of the bot's message ``event_id`` with ``markdown`` (an
        ``m.replace`` event, encrypted where the room is)."""
        if not markdown.strip():
            raise ConnectorError(f"cannot edit {event_id} to an empty message")
        await self._post(str(room), render.replacement(str(event_id), markdown))

    async def send_image(
        self, room: RoomId | str, path: Path, thread_id: ThreadId | str | None = None
    ) -> EventId:
        """Upload the PNG at ``path`` and post it as an ``m.image`` (in ``thread_id`` if given)."""
        try:
            data = await asyncio.to_thread(path.read_bytes)
            render.png_size(data)
        except (OSError, ValueError) as exc:
            raise ConnectorError(f"cannot send image {path}: {exc}") from exc
        encrypted = self.encryption is not None and self.encryption.is_encrypted(str(room))
        url, keys = await wire.upload_png(
            self._client, path.name, data, self._clock, encrypt=encrypted
        )
        content = render.image(path.name, url, data, render.relation(thread_id, None), keys)
        return await self._post(str(room), content)

    async def send_file(
        self, room: RoomId | str, file: Attachment, thread_id: ThreadId | str | None = None
    ) -> EventId:
        """Upload ``file`` and post it as an ``m.file`` (in ``thread_id`` if given); in an
        encrypted room the upload is encrypted and the event carries its keys."""
        encrypted = self.encryption is not None and self.encryption.is_encrypted(str(room))
        url, keys = await wire.upload(
            self._client, file.name, file.data, file.mime, self._clock, encrypt=encrypted
        )
        relates_to = render.relation(thread_id, None)
        content = render.file(file.name, file.mime, url, len(file.data), relates_to, keys)
        return await self._post(str(room), content)

    async def open_thread(self, room: RoomId, first_message: str) -> ThreadId:
        """Post ``first_message`` as a plain room message: its event is the thread root.

        A message too long for one event continues as replies in the new thread.
        """
        # Split once, measured as thread replies (the longer relation), so nothing is lost.
        parts = render.parts(first_message, thread_id=render.LONGEST_EVENT_ID)
        if not parts:
            raise ConnectorError("cannot open a thread with an empty first message")
        root = await self._post(room, render.notice(parts[0], None))
        for part in parts[1:]:
            await self._post(room, render.notice(part, render.relation(root, None)))
        return ThreadId(root)

    async def send_clear(self, room: str, markdown: str) -> EventId:
        """Post ``markdown`` as one ``m.notice`` unencrypted, even in an encrypted room (a
        key notice for a client that cannot read the bot's encrypted messages)."""
        path = f"/_matrix/client/v3/rooms/{quote(room, safe='')}/send/m.room.message/{uuid.uuid4()}"
        sent = await wire.raw_json(self._client, "PUT", path, dict(render.notice(markdown, None)))
        event_id = sent.get("event_id") if isinstance(sent, dict) else None
        if not isinstance(event_id, str):
            raise ConnectorError(f"send to {room}: no event id in the answer")
        return EventId(event_id)

    async def say_typing(self, room: str, on: bool) -> None:
        """Start (for :data:`TYPING_SECONDS`) or stop the bot's typing notice in ``room``."""
        await wire.call(
            self._client.room_typing(room, on, timeout=TYPING_SECONDS * 1000),
            nio.RoomTypingResponse,
            f"typing notice in {room}",
        )

    async def _known(self, room: str) -> None:
        """Wait (briefly) until the sync loop has shown the client ``room``: a room joined a
        moment ago is not in ``client.rooms`` before the next sync, and nio cannot encrypt
        for a room it does not know."""
        for _ in range(int(ROOM_WAIT_SECONDS / 0.05)):
            if room in self._client.rooms:
                return
            await asyncio.sleep(0.05)
        if room not in self._client.rooms:
            raise ConnectorError(
                f"send to {room}: the room is not known to this device yet (joined, but no "
                f"sync has shown it within {ROOM_WAIT_SECONDS:.0f} s)"
            )

    async def mark_read(self, room: RoomId, event_id: EventId, thread: ThreadId | None) -> None:
        """A public read receipt (``m.read``) for ``event_id``: threaded (spec v1.4), on the
        main timeline or ``thread``'s, so a thread-aware client places it right. Failing is
        logged, never raised: the command goes on."""
        try:
            await wire.call(
                self._client.update_receipt_marker(
                    room, event_id, nio.ReceiptType.read, thread_id=thread or "main"
                ),
                nio.UpdateReceiptMarkerResponse,
                f"read receipt in {room}",
            )
        except ConnectorError as exc:
            log.debug("matrix: no read receipt for %s: %s", event_id, exc)

    async def _post(self, room: str, content: Any) -> EventId:
        tx_id = str(uuid.uuid4())
        if self.encryption is not None:
            await self._known(room)
            await self.encryption.before_send(room)
        return EventId(await wire.send_event(self._client, room, content, tx_id, self._clock))
