"""A cross-signed person who verifies the bot by SAS: a matrix-nio E2EE client with its own
master, self-signing and user-signing keys published, driving Fleetwarden's own SAS machine
(:mod:`connectors.matrix.verification.sas`) from the operator's side, over to-device events
or in a room, as Element does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from nio import ToDeviceEvent, ToDeviceMessage

from connectors.matrix.encryption.signing import CrossSigningKeys, identities, key_id
from connectors.matrix.verification.sas import SasVerification
from connectors.matrix.verification.wire import PREFIX, Outgoing, Party
from tests.matrix_e2ee_user import EncryptedUser


async def call(
    homeserver: str, token: str, method: str, path: str, body: Mapping[str, Any]
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            homeserver + path,
            json=dict(body),
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


async def publish_cross_signing(
    homeserver: str, token: str, keys: CrossSigningKeys, password: str
) -> None:
    """Upload ``keys`` for their user (with password auth where the server asks for it)."""
    body = keys.upload_body()
    path = "/_matrix/client/v3/keys/device_signing/upload"
    status, answer = await call(homeserver, token, "POST", path, body)
    if status == 401:
        auth = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": keys.user_id},
            "password": password,
            "session": answer.get("session"),
        }
        status, answer = await call(homeserver, token, "POST", path, {**body, "auth": auth})
    assert status == 200, answer


async def keys_of(homeserver: str, token: str, user: str) -> dict[str, Any]:
    path = "/_matrix/client/v3/keys/query"
    status, answer = await call(homeserver, token, "POST", path, {"device_keys": {user: []}})
    assert status == 200, answer
    return dict(answer)


class SasOperator(EncryptedUser):
    """An E2EE person with a published cross-signing identity who verifies the bot."""

    def __init__(
        self, homeserver: str, user_id: str, device_id: str, token: str, store: Path
    ) -> None:
        super().__init__(homeserver, user_id, device_id, token, store)
        self.homeserver = homeserver
        self.token = token
        self.cross = CrossSigningKeys.generate(user_id)
        self.to_device: list[dict[str, Any]] = []
        self._fed: dict[str, int] = {}  # transaction → events of the bot fed to it
        self.client.add_to_device_callback(self._on_to_device, (ToDeviceEvent,))

    async def _on_to_device(self, event: Any) -> None:
        source = getattr(event, "source", None)
        if isinstance(source, dict) and str(source.get("type", "")).startswith(PREFIX):
            self.to_device.append(source)

    async def cross_sign(self, password: str) -> None:
        """Publish this person's identity and sign their device with it, as Element does."""
        await publish_cross_signing(self.homeserver, self.token, self.cross, password)
        mine = await keys_of(self.homeserver, self.token, self.user_id)
        device = mine["device_keys"][self.user_id][self.client.device_id]
        signed = self.cross.sign_device(device)
        body = {self.user_id: {self.client.device_id: signed}}
        status, answer = await call(
            self.homeserver, self.token, "POST", "/_matrix/client/v3/keys/signatures/upload", body
        )
        assert status == 200 and not answer.get("failures"), answer

    def party(self) -> Party:
        olm = self.client.olm
        assert olm is not None
        device = str(self.client.device_id)
        master = self.cross.public("master")
        own = str(olm.account.identity_keys["ed25519"])
        return Party(self.user_id, device, {f"ed25519:{device}": own, key_id(master): master})

    async def bot_party(self, bot: str) -> Party:
        """The bot's device and master key as the server publishes them."""
        answer = await keys_of(self.homeserver, self.token, bot)
        (device, payload), *_ = answer["device_keys"][bot].items()
        keys = {f"ed25519:{device}": payload["keys"][f"ed25519:{device}"]}
        identity = identities(answer).get(bot)
        if identity is not None:
            keys[key_id(identity.master_key)] = identity.master_key
        return Party(bot, device, keys)

    async def request_to_device(self, bot: Party) -> SasVerification:
        """Ask the bot's device to verify, then start SAS once it is ready (Element's order)."""
        machine = SasVerification.request(uuid.uuid4().hex, self.party(), bot, time.monotonic())
        await self.send(machine, [machine.request_event(int(time.time() * 1000))])
        return machine

    async def request_in_room(self, room: str, bot: Party) -> SasVerification:
        """Element's "Verify user": a request message in the room, then related events."""
        content = {
            "msgtype": PREFIX + "request",
            "body": "verification request",
            "from_device": self.client.device_id,
            "methods": ["m.sas.v1"],
            "to": bot.user_id,
        }
        event_id = await self.say(room, "", content=content)
        machine = SasVerification.request(event_id, self.party(), bot, time.monotonic())
        machine.transport = "room"
        self.room = room
        return machine

    async def send(self, machine: SasVerification, out: list[Outgoing]) -> None:
        for event in out:
            if machine.transport == "room":
                await self.client.room_send(
                    self.room, event.type, event.content, ignore_unverified_devices=True
                )
                continue
            message = ToDeviceMessage(
                event.type, machine.them.user_id, machine.them.device_id, event.content
            )
            await self.client.to_device(message)

    def inbound(self, machine: SasVerification) -> list[tuple[str, dict[str, Any]]]:
        """The bot's events for ``machine`` not fed to it yet: (kind, content)."""
        found: list[tuple[str, dict[str, Any]]] = []
        if machine.transport == "to_device":
            for source in self.to_device:
                content = source.get("content", {})
                if content.get("transaction_id") == machine.txn:
                    found.append((str(source["type"]), content))
        else:
            for event in self.events:
                relation = event.content.get("m.relates_to") or {}
                if event.sender == machine.them.user_id and relation.get("event_id") == machine.txn:
                    found.append((event.type, event.content))
        return found

    async def drive(self, machine: SasVerification, until: Any, within: float = 40.0) -> None:
        """Sync, feeding the bot's events to ``machine`` (starting SAS once ready), until
        ``until(machine)``."""
        deadline = time.monotonic() + within
        while not until(machine):
            assert time.monotonic() < deadline, f"timed out in state {machine.state}"
            await self.sync_once(500)
            events = self.inbound(machine)
            for kind, content in events[self._fed.get(machine.txn, 0) :]:
                out = machine.receive(kind.removeprefix(PREFIX), content, time.monotonic())
                await self.send(machine, out)
            self._fed[machine.txn] = len(events)
            if machine.state.value == "ready":
                await self.send(machine, machine.start())
