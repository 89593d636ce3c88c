"""The channel a verification runs over: its events sent to the other device — to-device,
or in the room of an in-room verification (encrypted when that device can read the bot's
room keys) — and both parties' keys, the bot's own and the other's fresh from the server.

Nothing here decides anything: :mod:`.sas` says what to send, :mod:`.service` when.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import nio

from connectors.errors import ConnectorError
from connectors.matrix import wire
from connectors.matrix.encryption.cross_signing import BotIdentity
from connectors.matrix.encryption.signing import UserIdentity, identities, key_id
from connectors.matrix.verification.wire import Outgoing, Party

log = logging.getLogger(__name__)


class Channel:
    """The bot's client, as verifications speak through it."""

    def __init__(
        self,
        client: nio.AsyncClient,
        *,
        identity: BotIdentity,
        before_send: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``before_send``: decides a room's devices before an encrypted send."""
        self._client = client
        self._identity = identity
        self._before_send = before_send

    def our_keys(self) -> dict[str, str]:
        olm = self._client.olm
        if olm is None:
            return {}
        device = str(self._client.device_id)
        keys = {f"ed25519:{device}": str(olm.account.identity_keys["ed25519"])}
        cross = self._identity.keys
        if cross is not None:
            master = cross.public("master")
            keys[key_id(master)] = master
        return keys

    async def their_keys(self, user: str, device: str) -> tuple[Party, UserIdentity | None]:
        """The device's ed25519 key and the user's master key, fresh from the server."""
        body: dict[str, Any] = {"device_keys": {user: []}}
        answer = await wire.raw_json(self._client, "POST", "/_matrix/client/v3/keys/query", body)
        if not isinstance(answer, dict):
            return Party(user, device, {}), None
        keys: dict[str, str] = {}
        payload = _dig(answer, "device_keys", user, device)
        device_keys = _dig(payload, "keys") if _dig(payload, "user_id") == user else None
        key = _dig(device_keys, f"ed25519:{device}")
        if isinstance(key, str):
            keys[f"ed25519:{device}"] = key
        identity = identities(answer).get(user) if keys else None
        if identity is not None:
            keys[key_id(identity.master_key)] = identity.master_key
        return Party(user, device, keys), identity

    async def send(self, room: str | None, them: Party, out: list[Outgoing]) -> None:
        """Send ``out`` to ``them``: in ``room``, or to their device when it is ``None``.
        A send that fails is logged, not raised."""
        for event in out:
            try:
                if room is not None:
                    await self._room_send(room, event, them)
                else:
                    path = (
                        f"/_matrix/client/v3/sendToDevice/{quote(event.type)}/"
                        f"{secrets.token_hex(12)}"
                    )
                    body = {"messages": {them.user_id: {them.device_id: event.content}}}
                    await wire.raw_json(self._client, "PUT", path, body)
            except ConnectorError as exc:
                log.warning("matrix: sending %s failed: %s", event.type, exc)

    async def _room_send(self, room: str, event: Outgoing, them: Party) -> None:
        """Encrypted in an encrypted room when the requesting device gets the bot's room
        keys; in clear otherwise (under ``trust: verified`` it gets none before it is
        verified, and SAS does not rely on the channel's secrecy)."""
        known = self._client.rooms.get(room)
        if known is not None and known.encrypted and self._before_send is not None:
            await self._before_send(room)
        olm = self._client.olm
        device = self._client.device_store[them.user_id].get(them.device_id)
        readable = olm is not None and device is not None and olm.is_device_verified(device)
        if known is not None and known.encrypted and not readable:
            path = (
                f"/_matrix/client/v3/rooms/{quote(room, safe='')}/send/"
                f"{quote(event.type)}/{secrets.token_hex(12)}"
            )
            await wire.raw_json(self._client, "PUT", path, event.content)
            return
        for _ in range(2):
            try:
                await wire.call(
                    self._client.room_send(room, event.type, event.content),
                    nio.RoomSendResponse,
                    f"send {event.type}",
                )
                return
            except nio.OlmUnverifiedDeviceError:
                # a device came up undecided between the review and the send: decide it
                # (never share the room key with it by default), then try once more
                if self._before_send is None:
                    break
                await self._before_send(room)
        raise ConnectorError(f"send {event.type}: a device in {room} is still undecided")


def _dig(value: object, *path: str) -> object:
    """``value[path[0]][path[1]]…``, or None where a step is missing or not an object."""
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value
