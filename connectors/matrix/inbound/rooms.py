"""Which rooms the bot serves: the configured ones, and those an operator invited it to.

Owns joining at start, the encryption policy per room (``connectors.matrix.encryption``:
a room it rules out gets one line saying why, then the bot leaves), answering invites and
the ``invited_rooms`` connector state.

An invite is judged from the room's own state after joining, not from the invite's
stripped state (the inviting server writes that): the invite event our join replaced,
read from the room, must come from an admin or operator who is in the room. Anyone else's
invite is declined at once (or left, if the stripped state lied). Lines for a room just
joined wait for the next sync, when nio knows whether the room is encrypted.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol
from urllib.parse import quote

import nio

from connectors.errors import ConnectorAuthError, ConnectorError
from connectors.matrix import wire
from connectors.matrix.inbound.translate import CONNECTOR

log = logging.getLogger(__name__)

INVITED_KEY = "invited_rooms"
MAX_STRANGERS = 1024
"""Strangers whose declined invites were logged: older ones are forgotten first."""

Policy = Literal["on", "off", "required"]
RoleOf = Callable[[str], str | None]
"""A Matrix user's role (``admin``, ``operator``, ``viewer``), or None for a stranger."""


class ConnectorState(Protocol):
    """Where a connector keeps small values across restarts (``fleet.ledger.Ledger`` is one)."""

    async def get_connector_state(self, connector: str, key: str) -> str | None: ...

    async def set_connector_state(self, connector: str, key: str, value: str) -> None: ...


Post = Callable[[str, str], Awaitable[object]]
"""Post markdown in a room (``room_id, markdown``)."""


def policy_error(room: str, encrypted: bool) -> str:
    """Why a room the encryption policy rules out is not served."""
    if encrypted:
        return (
            f"room {room} is end-to-end encrypted and this Fleetwarden is set to "
            "`encryption: off` — set `encryption: on` to serve encrypted rooms"
        )
    return (
        f"room {room} is not encrypted and this Fleetwarden is set to `encryption: "
        "required` — turn on encryption in the room's settings"
    )


class ServedRooms:
    """The set of rooms whose messages become inbound, and the home room."""

    def __init__(
        self,
        client: nio.AsyncClient,
        state: ConnectorState,
        *,
        role_of: RoleOf,
        post: Post,
        hello: str,
        policy: Policy = "on",
        post_clear: Post | None = None,
    ) -> None:
        """``post_clear``: posts a line unencrypted (for key notices)."""
        self._client = client
        self._state = state
        self._role_of = role_of
        self._post = post
        self._post_clear = post_clear
        self._hello = hello
        self._policy = policy
        self._configured: list[str] = []  # served, in config order
        self._invited: set[str] = set()
        self._declined_from: OrderedDict[str, None] = OrderedDict()
        self._after_sync: dict[str, list[str]] = {}  # room → lines to post once nio knows it
        self._leaving: set[str] = set()  # rooms to leave once their line is posted

    def __contains__(self, room: object) -> bool:
        return room in self._invited or room in self._configured

    def __iter__(self) -> Any:
        return iter([*self._configured, *sorted(self._invited)])

    def has_role(self, user: str) -> bool:
        return self._role_of(user) is not None

    def may_invite(self, user: str) -> bool:
        return self._role_of(user) in ("admin", "operator")

    async def say(self, room: str, markdown: str, *, clear: bool = False) -> None:
        """Post a line in ``room`` (``clear``: unencrypted even in an encrypted room);
        failures are logged, never raised."""
        post = self._post_clear if clear and self._post_clear is not None else self._post
        try:
            await post(room, markdown)
        except ConnectorAuthError:
            raise
        except ConnectorError as exc:
            log.warning("matrix: could not post in %s: %s", room, exc)

    def later(self, room: str, markdown: str) -> None:
        """Post ``markdown`` in ``room`` after the next sync that shows the room."""
        self._after_sync.setdefault(room, []).append(markdown)

    async def after_sync(self, joined: set[str]) -> None:
        """Post the lines that waited for these rooms to reach nio."""
        for room in [r for r in self._after_sync if r in joined]:
            for line in self._after_sync.pop(room):
                await self.say(room, line)
            if room in self._leaving:
                self._leaving.discard(room)
                await self._leave(room)

    def _allowed(self, encrypted: bool) -> bool:
        return not (
            (encrypted and self._policy == "off") or (not encrypted and self._policy == "required")
        )

    async def on_encryption(self, room: str) -> bool:
        """Encryption was turned on in ``room``: whether the bot keeps serving it."""
        if self._allowed(True):
            log.info("matrix: end-to-end encryption was turned on in %s", room)
            return True
        await self._leave_unserved(room, encrypted=True)
        return False

    async def _leave_unserved(self, room: str, *, encrypted: bool) -> None:
        """One line saying why, then leave (the line goes before the leave)."""
        why = policy_error(room, encrypted)
        log.error("matrix: %s", why)
        await self.say(room, why[0].upper() + why[1:] + ".")
        await self.stop_serving(room)
        await self._leave(room)

    async def _leave(self, room: str) -> None:
        try:
            await wire.call(self._client.room_leave(room), nio.RoomLeaveResponse, f"leave {room}")
        except ConnectorAuthError:
            raise
        except ConnectorError as exc:
            log.warning("matrix: could not leave %s: %s", room, exc)

    @property
    def home_room(self) -> str | None:
        """The first configured room that is served."""
        return self._configured[0] if self._configured else None

    async def join_configured(self, rooms: tuple[str, ...]) -> None:
        """Join each configured room (aliases resolve by joining); serve the unencrypted ones."""
        for room in rooms:
            joined = await wire.call(self._client.join(room), nio.JoinResponse, f"join {room}")
            room_id = str(joined.room_id)
            encrypted = await self._encrypted(room_id)
            if not self._allowed(encrypted):
                name = room if room == room_id else f"{room} ({room_id})"
                log.error("matrix: %s; not serving it", policy_error(name, encrypted))
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
            elif not self._allowed(encrypted := await self._encrypted(room)):
                log.error("matrix: %s; not serving it", policy_error(room, encrypted))
            else:
                self._invited.add(room)
        if self._invited != set(saved):
            await self._save()

    async def on_invite(self, room: str, claimed_inviter: str | None) -> None:
        """Answer an invite. ``claimed_inviter`` is what the stripped state says: a stranger
        there is declined without joining; anyone else is judged again after joining."""
        try:
            if claimed_inviter is None or not self.may_invite(claimed_inviter):
                await self._decline(room, claimed_inviter)
                return
            await wire.call(self._client.join(room), nio.JoinResponse, f"join {room}")
            inviter = await self._inviter(room)
            if inviter is None or not self.may_invite(inviter):
                self._note_stranger(room, inviter or claimed_inviter)
                await self._leave(room)
                return
            encrypted = await self._encrypted(room)
            if not self._allowed(encrypted):
                log.error("matrix: %s (invited by %s)", policy_error(room, encrypted), inviter)
                # Said after the next sync (in an encrypted room it must be encrypted), then left.
                why = policy_error(room, encrypted)
                self.later(room, why[0].upper() + why[1:] + ".")
                self._leaving.add(room)
                return
            self._invited.add(room)
            await self._save()
            log.info("matrix: joined %s at the invitation of %s", room, inviter)
            self.later(room, self._hello)
        except ConnectorAuthError:
            raise
        except ConnectorError as exc:
            log.warning(
                "matrix: could not answer the invite to %s from %s: %s", room, claimed_inviter, exc
            )

    async def _inviter(self, room: str) -> str | None:
        """Who invited the bot, from the room itself: the invite event the bot's join replaced
        (the server checked it against the room's auth rules), sent by a member still joined."""
        path = f"/_matrix/client/v3/rooms/{quote(room, safe='')}"
        events = await wire.raw_json(self._client, "GET", f"{path}/state")
        if not isinstance(events, list):
            return None
        me = self._client.user_id
        members = {
            e.get("state_key"): e
            for e in events
            if isinstance(e, dict) and e.get("type") == "m.room.member"
        }
        replaced = ((members.get(me) or {}).get("unsigned") or {}).get("replaces_state")
        if not isinstance(replaced, str):
            return None
        invite = await wire.raw_json(
            self._client, "GET", f"{path}/event/{quote(replaced, safe='')}"
        )
        if not isinstance(invite, dict):
            return None
        content = invite.get("content")
        content = content if isinstance(content, dict) else {}
        sender = invite.get("sender")
        if (
            invite.get("type") != "m.room.member"
            or invite.get("state_key") != me
            or content.get("membership") != "invite"
            or not isinstance(sender, str)
        ):
            return None
        joined = ((members.get(sender) or {}).get("content") or {}).get("membership") == "join"
        return sender if joined else None

    async def _decline(self, room: str, inviter: str | None) -> None:
        await wire.call(self._client.room_leave(room), nio.RoomLeaveResponse, f"decline {room}")
        self._note_stranger(room, inviter)

    def _note_stranger(self, room: str, inviter: str | None) -> None:
        key = inviter or "?"
        if key in self._declined_from:
            self._declined_from.move_to_end(key)
            return
        self._declined_from[key] = None
        while len(self._declined_from) > MAX_STRANGERS:
            self._declined_from.popitem(last=False)
        log.warning(
            "matrix: declined an invite to %s from %s, who is not an admin or operator",
            room,
            inviter,
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
