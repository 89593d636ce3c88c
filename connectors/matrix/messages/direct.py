"""Direct rooms: writing to one person alone (the dashboard's sign-in link).

A direct room is one the bot made (``is_direct``, Element's trusted private chat, encrypted
unless the connector's encryption is off) with that person invited. It is remembered in the
connector state (``direct_rooms``: user → room), and reused while the two of them are its
only members; anyone else in it, or the person gone, and a new one is made.

Nothing is posted before the person has joined: a room key shared with an invitee's
devices is not something every client keeps, and a message they cannot read is worse than
none. The bot waits for the join a little while (they accept the invitation), and says it
could not write otherwise; asked again, it finds the room joined and writes at once.
Commands typed in a direct room are not served: it is not one of the bot's rooms.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import nio

from connectors.errors import ConnectorError
from connectors.matrix import wire
from connectors.matrix.inbound.rooms import ConnectorState
from connectors.matrix.inbound.translate import CONNECTOR

log = logging.getLogger(__name__)

DIRECT_KEY = "direct_rooms"
JOIN_WAIT_SECONDS = 60.0
"""How long a new direct room waits for its person to join before the bot gives up."""
_ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}

Post = Callable[[str, str], Awaitable[object]]
"""Post markdown in a room (``room_id, markdown``), encrypted where the room is."""


class DirectRooms:
    """The bot's direct rooms, one per person it wrote to alone."""

    def __init__(
        self,
        client: nio.AsyncClient,
        state: ConnectorState | None,
        post: Post,
        *,
        encrypted: bool,
        join_wait: float = JOIN_WAIT_SECONDS,
    ) -> None:
        self._client = client
        self._state = state
        self._post = post
        self._encrypted = encrypted
        self._join_wait = join_wait

    async def send(self, user: str, markdown: str) -> bool:
        """Post ``markdown`` in the direct room with ``user`` (made and waited for, if
        need be); whether it was posted."""
        try:
            room = await self._room_with(user)
            if room is None:
                return False
            await self._post(room, markdown)
        except ConnectorError as exc:
            log.warning("matrix: no direct message to %s: %s", user, exc)
            return False
        return True

    async def _room_with(self, user: str) -> str | None:
        rooms = await self._load()
        room = rooms.get(user)
        if room is None or not self._private(room, user, joined=False):
            room = await self._create(user)
            rooms[user] = room
            await self._save(rooms)
        return room if await self._joined(room, user) else None

    def _private(self, room: str, user: str, *, joined: bool) -> bool:
        """Whether only the bot and ``user`` are in ``room`` (``joined``: and ``user`` has
        accepted the invitation)."""
        known = self._client.rooms.get(room)
        if known is None:
            return False
        members = set(known.users)
        if members != {self._client.user_id, user}:
            return False
        return not joined or user not in known.invited_users

    async def _joined(self, room: str, user: str) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._join_wait
        while not self._private(room, user, joined=True):
            if loop.time() >= deadline:
                log.info("matrix: %s has not joined the direct room %s yet", user, room)
                return False
            await asyncio.sleep(0.2)  # the sync loop brings the membership
        return True

    async def _create(self, user: str) -> str:
        made = await wire.call(
            self._client.room_create(
                is_direct=True,
                invite=[user],
                preset=nio.RoomPreset.trusted_private_chat,
                name="Fleetwarden",
                initial_state=[_ENCRYPTION] if self._encrypted else [],
            ),
            nio.RoomCreateResponse,
            f"make a direct room with {user}",
        )
        log.info("matrix: made the direct room %s with %s", made.room_id, user)
        return str(made.room_id)

    async def _load(self) -> dict[str, str]:
        if self._state is None:
            return {}
        raw = await self._state.get_connector_state(CONNECTOR, DIRECT_KEY)
        try:
            found = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    async def _save(self, rooms: dict[str, str]) -> None:
        if self._state is not None:
            await self._state.set_connector_state(CONNECTOR, DIRECT_KEY, json.dumps(rooms))
