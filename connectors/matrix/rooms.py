"""Which rooms the bot serves: the configured unencrypted ones, and those an operator invited it to.

Owns joining at start, the end-to-end encryption check, answering invites (join for an
operator, decline for anyone else) and the ``invited_rooms`` connector state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import nio

from connectors.errors import ConnectorAuthError, ConnectorError
from connectors.matrix import wire
from connectors.matrix.translate import CONNECTOR

log = logging.getLogger(__name__)

INVITED_KEY = "invited_rooms"


class ConnectorState(Protocol):
    """Where a connector keeps small values across restarts (``fleet.ledger.Ledger`` is one)."""

    async def get_connector_state(self, connector: str, key: str) -> str | None: ...

    async def set_connector_state(self, connector: str, key: str, value: str) -> None: ...


Post = Callable[[str, str], Awaitable[object]]
"""Post markdown in a room (``room_id, markdown``)."""


def encrypted_room_error(room: str) -> str:
    return (
        f"room {room} is end-to-end encrypted; Fleetwarden supports unencrypted rooms only "
        "for now and will not read or answer there — use an unencrypted room"
    )


class ServedRooms:
    """The set of rooms whose messages become inbound, and the home room."""

    def __init__(
        self,
        client: nio.AsyncClient,
        state: ConnectorState,
        *,
        is_operator: Callable[[str], bool],
        post: Post,
        hello: str,
    ) -> None:
        self._client = client
        self._state = state
        self._is_operator = is_operator
        self._post = post
        self._hello = hello
        self._configured: list[str] = []  # served, in config order
        self._invited: set[str] = set()
        self._declined_from: set[str] = set()

    def __contains__(self, room: object) -> bool:
        return room in self._invited or room in self._configured

    @property
    def home_room(self) -> str | None:
        """The first configured room that is served."""
        return self._configured[0] if self._configured else None

    async def join_configured(self, rooms: tuple[str, ...]) -> None:
        """Join each configured room (aliases resolve by joining); serve the unencrypted ones."""
        for room in rooms:
            joined = await wire.call(self._client.join(room), nio.JoinResponse, f"join {room}")
            room_id = str(joined.room_id)
            if await self._encrypted(room_id):
                name = room if room == room_id else f"{room} ({room_id})"
                log.error("matrix: %s", encrypted_room_error(name))
            elif room_id not in self._configured:
                self._configured.append(room_id)

    async def restore_invited(self) -> None:
        """Serve again the rooms operators invited the bot to, if it is still in them."""
        raw = await self._state.get_connector_state(CONNECTOR, INVITED_KEY)
        saved = _room_list(raw)
        if not saved:
            return
        joined = await wire.call(
            self._client.joined_rooms(), nio.JoinedRoomsResponse, "list joined rooms"
        )
        still = set(joined.rooms)
        for room in saved:
            if room not in still:
                log.warning("matrix: no longer in invited room %s; not serving it", room)
            elif await self._encrypted(room):
                log.error("matrix: %s", encrypted_room_error(room))
            else:
                self._invited.add(room)
        if self._invited != set(saved):
            await self._save()

    async def on_invite(self, room: str, inviter: str | None) -> None:
        """Join a room an operator invited the bot to and greet; decline anyone else's."""
        try:
            if inviter is None or not self._is_operator(inviter):
                await self._decline(room, inviter)
                return
            await wire.call(self._client.join(room), nio.JoinResponse, f"join {room}")
            if await self._encrypted(room):
                log.error("matrix: %s (invited by %s)", encrypted_room_error(room), inviter)
                await self._post(room, encrypted_room_error(room) + ".")
                return
            self._invited.add(room)
            await self._save()
            log.info("matrix: joined %s at the invitation of operator %s", room, inviter)
            await self._post(room, self._hello)
        except ConnectorAuthError:
            raise
        except ConnectorError as exc:
            log.warning("matrix: could not answer the invite to %s from %s: %s", room, inviter, exc)

    async def _decline(self, room: str, inviter: str | None) -> None:
        await wire.call(self._client.room_leave(room), nio.RoomLeaveResponse, f"decline {room}")
        key = inviter or "?"
        if key not in self._declined_from:
            self._declined_from.add(key)
            log.warning(
                "matrix: declined an invite to %s from %s, who is not an operator", room, inviter
            )

    async def on_left(self, room: str) -> None:
        """The bot left or was removed from ``room``: stop serving it."""
        if room not in self:
            return
        log.warning("matrix: the bot is no longer in %s; not serving it", room)
        await self.stop_serving(room)

    async def stop_serving(self, room: str) -> None:
        if room in self._configured:
            self._configured.remove(room)
        if room in self._invited:
            self._invited.discard(room)
            await self._save()

    async def _encrypted(self, room: str) -> bool:
        what = f"read the encryption state of {room}"
        try:
            response = await self._client.room_get_state_event(room, "m.room.encryption")
        except wire.TRANSIENT_EXCEPTIONS as exc:
            raise ConnectorError(f"{what}: cannot reach the homeserver: {exc!r}") from exc
        if isinstance(response, nio.RoomGetStateEventResponse):
            return True
        if getattr(response, "status_code", None) == "M_NOT_FOUND":
            return False
        raise wire.error_for(response, what)

    async def _save(self) -> None:
        await self._state.set_connector_state(
            CONNECTOR, INVITED_KEY, json.dumps(sorted(self._invited))
        )


def _room_list(raw: str | None) -> list[str]:
    if raw is None:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        log.warning("matrix: ignoring malformed %s state %r", INVITED_KEY, raw[:100])
        return []
    if not isinstance(value, list):
        return []
    return [room for room in value if isinstance(room, str)]
