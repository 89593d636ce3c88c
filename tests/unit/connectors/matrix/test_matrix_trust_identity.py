"""Trust by cross-signing on a real matrix-nio device store, without a homeserver: what the
bot decides from the identities a ``/keys/query`` answer shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nio
import pytest
from nio.crypto import OlmDevice
from nio.rooms import MatrixRoom
from nio.store import SqliteStore

from connectors.matrix.encryption.signing import CrossSigningKeys
from connectors.matrix.encryption.trust import DeviceTrust

BOT = "@bot:example.org"
ANN = "@ann:example.org"
ROOM = "!control:example.org"
ED25519 = "E" * 43


@pytest.fixture
def client(tmp_path: Path) -> Iterator[nio.AsyncClient]:
    config = nio.AsyncClientConfig(encryption_enabled=True, store=SqliteStore)
    made = nio.AsyncClient("http://127.0.0.1:9", BOT, store_path=str(tmp_path), config=config)
    made.restore_login(BOT, "BOTDEVICE", "not-a-real-token")  # loads the store
    room = MatrixRoom(ROOM, BOT, encrypted=True)
    room.add_member(ANN, "Ann", None)
    made.rooms[ROOM] = room
    phone = OlmDevice(ANN, "PHONE", {"ed25519": ED25519, "curve25519": "C" * 43})
    made.device_store.add(phone)
    made.store.save_device_keys({ANN: {"PHONE": phone}})
    yield made
    made.store.database.close()


def _phone(keys: CrossSigningKeys) -> dict[str, Any]:
    device = {
        "user_id": ANN,
        "device_id": "PHONE",
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {"ed25519:PHONE": ED25519, "curve25519:PHONE": "C" * 43},
    }
    return keys.sign_device(device)


def _answer(keys: CrossSigningKeys, *, with_identity: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"device_keys": {ANN: {"PHONE": _phone(keys)}}}
    if with_identity:
        body = keys.upload_body()
        answer["master_keys"] = {ANN: body["master_key"]}
        answer["self_signing_keys"] = {ANN: body["self_signing_key"]}
    return answer


def _trust(client: nio.AsyncClient, tmp_path: Path, policy: Any) -> DeviceTrust:
    return DeviceTrust(client, policy=policy, has_role=lambda user: user == ANN, directory=tmp_path)


@pytest.mark.parametrize("policy", ["tofu", "verified"])
def test_an_identity_the_homeserver_stops_showing_refuses_the_users_devices(
    client: nio.AsyncClient, tmp_path: Path, policy: str
) -> None:
    """A pinned or verified master key that vanishes from /keys/query does not fall back to
    per-device trust: every device of that user is refused and the room told once."""
    ann = CrossSigningKeys.generate(ANN)
    trust = _trust(client, tmp_path, policy)
    if policy == "verified":
        trust.verify_identity(ANN, ann.public("master"))
    trust.note_identities(_answer(ann, with_identity=True))
    assert trust.review([ROOM]) == []
    phone = client.device_store[ANN]["PHONE"]
    assert client.olm is not None and client.olm.is_device_verified(phone)
    trust.note_identities(_answer(ann, with_identity=False))
    said = trust.review([ROOM])
    assert [line.markdown.split(":", 1)[0] for line in said] == ["Identity missing"]
    assert client.olm.is_device_blacklisted(phone)
    assert trust.refusal(ANN, "PHONE") is not None
    assert trust.review([ROOM]) == []  # said once


def test_a_user_never_seen_with_an_identity_keeps_per_device_tofu(
    client: nio.AsyncClient, tmp_path: Path
) -> None:
    """Without any identity ever seen, a device is trusted per device under tofu."""
    trust = _trust(client, tmp_path, "tofu")
    trust.note_identities(_answer(CrossSigningKeys.generate(ANN), with_identity=False))
    assert trust.review([ROOM]) == []
    assert client.olm is not None
    assert client.olm.is_device_verified(client.device_store[ANN]["PHONE"])
