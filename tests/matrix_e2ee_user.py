"""A person in Matrix with end-to-end encryption on, as in Element: a matrix-nio client with
its own device keys and crypto store, that uploads and queries keys after each sync,
decrypts what it can and sends encrypted in encrypted rooms."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from nio import (
    Api,
    AsyncClient,
    AsyncClientConfig,
    KeysQueryResponse,
    MegolmEvent,
    RoomSendResponse,
)
from nio.store import SqliteStore

from tests.matrix_user import MatrixUser


class EncryptedUser(MatrixUser):
    """Logged in with a token; its crypto store lives in ``store``. ``decrypted`` holds the ids
    of the events that arrived encrypted and were read; ``unreadable`` those that could not."""

    def __init__(
        self, homeserver: str, user_id: str, device_id: str, token: str, store: Path
    ) -> None:
        super().__init__(homeserver, user_id, device_id, token)
        store.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(
            homeserver,
            user_id,
            store_path=str(store),
            config=AsyncClientConfig(
                max_limit_exceeded=0, max_timeouts=0, encryption_enabled=True, store=SqliteStore
            ),
        )
        self.client.restore_login(user_id, device_id, token)
        self.decrypted: set[str] = set()
        self.unreadable: set[str] = set()

    async def create_room(self, invite: tuple[str, ...] = (), *, encrypted: bool = True) -> str:
        return await super().create_room(invite, encrypted=encrypted)

    async def say(
        self,
        room: str,
        text: str,
        *,
        thread: str | None = None,
        content: dict[str, Any] | None = None,
    ) -> str:
        body: dict[str, Any] = content or {"msgtype": "m.text", "body": text}
        if thread is not None:
            body["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": thread},
            }
        if self.client.rooms.get(room) is None:
            await self.sync_once(0)
        response = await self.client.room_send(
            room, "m.room.message", body, ignore_unverified_devices=True
        )
        assert isinstance(response, RoomSendResponse), response
        return str(response.event_id)

    async def react(self, room: str, target: str, key: str) -> str:
        """Annotate ``target`` with ``key``, encrypted as Element sends reactions in an
        encrypted room (matrix-nio's ``room_send`` would send an ``m.reaction`` in clear)."""
        olm = self.client.olm
        assert olm is not None
        if olm.should_share_group_session(room):
            await self.client.share_group_session(room, ignore_unverified_devices=True)
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}
        event_type, encrypted = self.client.encrypt(room, "m.reaction", content)
        method, path, data = Api.room_send(
            self.client.access_token, room, event_type, encrypted, str(uuid.uuid4())
        )
        response = await self.client._send(RoomSendResponse, method, path, data, (room,))
        assert isinstance(response, RoomSendResponse), response
        return str(response.event_id)

    def _record(self, room_id: str, event: Any) -> None:
        event_id = event.source.get("event_id", "")
        if getattr(event, "decrypted", False):
            self.decrypted.add(event_id)
        if isinstance(event, MegolmEvent):
            self.unreadable.add(event_id)
        super()._record(room_id, event)

    async def _after_sync(self) -> None:
        """Key upkeep, as every E2EE client does after a sync."""
        client = self.client
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            query = await client.keys_query()
            assert isinstance(query, KeysQueryResponse), query
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        await client.send_to_device_messages()

    def room_keys_from(self, user_id: str) -> int:
        """How many Megolm sessions this device holds that ``user_id``'s devices sent."""
        olm = self.client.olm
        assert olm is not None
        curve_keys = {d.curve25519 for d in olm.device_store.active_user_devices(user_id)}
        return sum(1 for session in olm.inbound_group_store if session.sender_key in curve_keys)
