"""A person in Matrix, for tests: a real matrix-nio client that sends and waits for events."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    RoomCreateResponse,
    RoomSendResponse,
    SyncResponse,
)


@dataclass(frozen=True)
class Event:
    """One timeline event as the test sees it."""

    room: str
    event_id: str
    sender: str
    type: str
    content: dict[str, Any]

    @property
    def body(self) -> str:
        return str(self.content.get("body", ""))

    @property
    def thread_root(self) -> str | None:
        rel = self.content.get("m.relates_to") or {}
        return rel.get("event_id") if rel.get("rel_type") == "m.thread" else None

    @property
    def reply_to(self) -> str | None:
        rel = self.content.get("m.relates_to") or {}
        return (rel.get("m.in_reply_to") or {}).get("event_id")


MEGOLM = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}
"""The state event that makes a room end-to-end encrypted, as Element creates it."""


class MatrixUser:
    """Logged in with a token from the admin API; keeps every event it has seen."""

    def __init__(self, homeserver: str, user_id: str, device_id: str, token: str) -> None:
        self.user_id = user_id
        self.client = AsyncClient(
            homeserver, user_id, config=AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0)
        )
        self.client.restore_login(user_id, device_id, token)
        self.events: list[Event] = []
        self.invites: list[str] = []
        self.ephemeral: list[tuple[str, Any]] = []  # (room, nio event): typing, receipts
        self.left: dict[str, str] = {}  # room -> membership of others who left/rejected
        self._since: str | None = None

    async def close(self) -> None:
        await self.client.close()

    async def create_room(self, invite: tuple[str, ...] = (), *, encrypted: bool = False) -> str:
        response = await self.client.room_create(
            invite=list(invite), is_direct=False, initial_state=[MEGOLM] if encrypted else []
        )
        assert isinstance(response, RoomCreateResponse), response
        return str(response.room_id)

    async def join(self, room: str) -> None:
        await self.client.join(room)

    async def invite(self, room: str, user: str) -> None:
        await self.client.room_invite(room, user)

    async def say(self, room: str, text: str, *, thread: str | None = None) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": text}
        if thread is not None:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": thread},
            }
        response = await self.client.room_send(room, "m.room.message", content)
        assert isinstance(response, RoomSendResponse), response
        return str(response.event_id)

    async def sync_once(self, timeout_ms: int = 500) -> None:
        response = await self.client.sync(
            timeout=timeout_ms,
            since=self._since,
            sync_filter={"room": {"timeline": {"limit": 200}}},
        )
        if not isinstance(response, SyncResponse):
            return
        self._since = response.next_batch
        for room_id, room in response.rooms.join.items():
            self.ephemeral.extend((room_id, event) for event in room.ephemeral)
            for event in room.timeline.events:
                self._record(room_id, event)
        self.invites.extend(response.rooms.invite)
        await self._after_sync()

    def _record(self, room_id: str, event: Any) -> None:
        """Keep one timeline event (nio's object; ``source`` is its JSON)."""
        source = event.source
        self.events.append(
            Event(
                room=room_id,
                event_id=source.get("event_id", ""),
                sender=source.get("sender", ""),
                type=source.get("type", ""),
                content=source.get("content", {}),
            )
        )
        membership = source.get("content", {}).get("membership")
        if source.get("type") == "m.room.member" and membership == "leave":
            self.left[room_id] = source.get("state_key", "")

    async def _after_sync(self) -> None:
        """What a client does after each sync besides reading it (nothing, unencrypted)."""

    async def wait_for(self, predicate: Callable[[list[Event]], Any], within: float = 20.0) -> Any:
        """Sync until ``predicate(all events so far)`` is truthy; return its value."""
        deadline = time.monotonic() + within
        while True:
            result = predicate(self.events)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    "timed out; last events:\n"
                    + "\n".join(f"{e.sender}: {e.body[:120]!r}" for e in self.events[-15:])
                )
            await self.sync_once()

    def replies_to(self, event_id: str, sender: str) -> list[Event]:
        return [e for e in self.events if e.sender == sender and e.reply_to == event_id]

    async def reply(
        self, room: str, text: str, bot: str, *, thread: str | None = None, within: float = 20.0
    ) -> Event:
        """Send ``text`` and wait for the bot's (first) reply to it."""
        sent = await self.say(room, text, thread=thread)
        replies = await self.wait_for(lambda _: self.replies_to(sent, bot), within=within)
        return replies[0]  # type: ignore[no-any-return]
