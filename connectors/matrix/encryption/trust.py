"""Which devices get the bot's room keys, and whose encrypted commands it takes.

The policy (``connectors.matrix.encryption.trust``): ``tofu`` trusts a device of a user with a role
the first time its keys are seen, and remembers its key; ``verified`` trusts only devices
an admin verified (``fleetwarden matrix trust``). Whatever the policy, a device of a user
without a role (a stranger in the room) is blacklisted, so nio never shares a room key with
it, and a known device whose ed25519 key changed is refused and announced (nio keeps the
first key it saw; the new one never gets a key). A newly trusted device of a known user is
announced in the rooms it shares with the bot, and the room's outbound session is rotated
so it can read what the bot sends next.

Users who publish cross-signing keys are trusted as people, not device by device: their
identity (master key) is accepted when an admin verified it (``identities``: SAS, or
``fleetwarden matrix trust USER MASTER_KEY``), when the bot's user-signing key signed it,
or — under ``tofu`` — when it is the one pinned the first time it was seen (``pinned``).
Every device of an accepted identity that its self-signing key signed is then trusted, new
ones included; a device its owner did not sign is refused, and so is every device of a
user whose master key changed since it was verified or pinned. Users without cross-signing
keys (older clients) keep the per-device rules above.

The decisions are kept in ``<crypto dir>/trust.json`` (mode 600): device → the key it was
trusted with, admin verifications, refusals, verified and pinned master keys. nio's store
holds the resulting trust state.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nio

from connectors.matrix.encryption.signing import UserIdentity, grouped, identities
from fleet.private_files import open_private, write_private

log = logging.getLogger(__name__)

Policy = Literal["tofu", "verified"]
_KINDS = ("seen", "verified", "refused", "identities", "pinned")
# Said once per user, not per device.
_PER_USER = ("Identity changed", "Identity not verified", "Identity missing")


@dataclass(frozen=True, slots=True)
class Announcement:
    """A line to post in ``room`` about a device (or a key); ``clear``: unencrypted even in
    an encrypted room (key notices, when the config allows it)."""

    room: str
    markdown: str
    clear: bool = False


class TrustFile:
    """``trust.json``: ``{"seen"|"verified"|"refused": {user: {device: ed25519}}}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, dict[str, str]]] = {kind: {} for kind in _KINDS}
        self._mtime: int | None = None
        self.refresh()

    def refresh(self, *, force: bool = False) -> None:
        """Read the file again if it changed (``fleetwarden matrix trust`` wrote to it)."""
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._mtime and not force:
                return
            raw: Any = json.loads(self.path.read_text(encoding="utf8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"{self.path} cannot be read ({exc}); move it aside to start over"
            ) from exc
        self._mtime = mtime
        if isinstance(raw, dict):
            for kind in _KINDS:
                users = raw.get(kind)
                if isinstance(users, dict):
                    self._data[kind] = {
                        str(u): {str(d): str(k) for d, k in devices.items()}
                        for u, devices in users.items()
                        if isinstance(devices, dict)
                    }

    def get(self, kind: str, user: str, device: str) -> str | None:
        return self._data[kind].get(user, {}).get(device)

    def devices(self, kind: str, user: str) -> dict[str, str]:
        return dict(self._data[kind].get(user, {}))

    def put(self, kind: str, user: str, device: str, key: str) -> None:
        """Record one decision. The bot and ``fleetwarden matrix trust`` both write the
        file: under a lock, it is read again first, so neither loses the other's."""
        lock = self.path.with_name(self.path.name + ".lock")
        fd = open_private(lock, os.O_WRONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.refresh(force=True)
            self._data[kind].setdefault(user, {})[device] = key
            write_private(self.path, json.dumps(self._data, indent=1, sort_keys=True))
            self._mtime = self.path.stat().st_mtime_ns
        finally:
            os.close(fd)  # releases the lock


class DeviceTrust:
    """Applies the policy to nio's device store; one per connector."""

    def __init__(
        self,
        client: nio.AsyncClient,
        *,
        policy: Policy,
        has_role: Callable[[str], bool],
        directory: Path,
        bot_user_signing: Callable[[], str | None] = lambda: None,
    ) -> None:
        """``bot_user_signing``: the bot's user-signing public key, if it has one."""
        self._client = client
        self._bot_usk = bot_user_signing
        self._usk: str | None = None  # the bot's user-signing key, read once per review
        self._identities: dict[str, UserIdentity] = {}
        self._device_keys: dict[tuple[str, str], dict[str, Any]] = {}
        self._policy = policy
        self._has_role = has_role
        self._file = TrustFile(directory / "trust.json")
        self._told: set[tuple[str, str, str, str]] = set()  # (room, user, device, what)

    def note_keys(self, response: Any) -> list[tuple[str, str]]:
        """Read a ``/keys/query`` answer for keys that changed under a known device id;
        such a device is refused from now on. Returns the (user, device) pairs refused."""
        refused: list[tuple[str, str]] = []
        device_keys = getattr(response, "device_keys", None)
        if not isinstance(device_keys, dict):
            return refused
        for user, devices in device_keys.items():
            if not isinstance(devices, dict):
                continue
            for device_id, payload in devices.items():
                keys = payload.get("keys") if isinstance(payload, dict) else None
                key = keys.get(f"ed25519:{device_id}") if isinstance(keys, dict) else None
                if not isinstance(key, str):
                    continue
                known = self._file.get("seen", user, device_id) or self._file.get(
                    "verified", user, device_id
                )
                if known is not None and known != key:
                    if self._file.get("refused", user, device_id) != key:
                        self._file.put("refused", user, device_id, key)
                        log.warning(
                            "matrix: the key of device %s of %s changed; refusing it",
                            device_id,
                            user,
                        )
                    refused.append((user, device_id))
        return refused

    def note_identities(self, keys_query: dict[str, Any]) -> None:
        """Read a raw ``/keys/query`` answer for the users' cross-signing identities and
        their devices' signed keys objects (nio keeps neither)."""
        found = identities(keys_query)
        device_keys = keys_query.get("device_keys")
        for user, devices in (device_keys or {}).items():
            if user in found:
                self._identities[user] = found[user]
            else:
                self._identities.pop(user, None)
            for device_id, payload in (devices or {}).items():
                if isinstance(payload, dict):
                    self._device_keys[(user, device_id)] = payload

    def identity(self, user: str) -> UserIdentity | None:
        """``user``'s cross-signing identity, as last queried."""
        return self._identities.get(user)

    def review(self, rooms: Iterable[str]) -> list[Announcement]:
        """Set the trust state of every device of every member of the encrypted ``rooms``;
        the lines to post about devices newly trusted, refused or left out."""
        olm = self._client.olm
        if olm is None:
            return []
        try:
            self._file.refresh()
        except ValueError as exc:
            log.error("matrix: %s; keeping the trust decisions read before", exc)
        self._usk = self._bot_usk()
        said: list[Announcement] = []
        for room_id in rooms:
            room = self._client.rooms.get(room_id)
            if room is None or not room.encrypted:
                continue
            for user in list(room.users):
                for device in self._client.device_store.active_user_devices(user):
                    line = self._decide(user, device)
                    if line is None:
                        continue
                    what = line.split(":", 1)[0]
                    told = (room_id, user, "*" if what in _PER_USER else device.id, what)
                    if told not in self._told:
                        self._told.add(told)
                        said.append(Announcement(room_id, line))
        return said

    def _decide(self, user: str, device: Any) -> str | None:
        client, olm = self._client, self._client.olm
        assert olm is not None
        if user == client.user_id and device.id == client.device_id:
            return None
        key = str(device.ed25519)
        name = f"`{device.id}`" + (f" ({device.display_name})" if device.display_name else "")
        if self._file.get("refused", user, device.id) is not None:
            self._blacklist(device)
            return (
                f"Refused: the key of {user}'s device {name} changed since it was trusted; "
                "it gets no keys and its messages are not taken. If that is really their "
                "device, they log out of it and sign in again (a new device)."
            )
        if user == client.user_id or not self._has_role(user):
            self._blacklist(device)  # a stranger's device never gets a room key
            return None
        identity = self._identities.get(user)
        if identity is not None:
            return self._decide_by_identity(user, device, identity, name)
        known = self._file.get("identities", user, "master") or self._file.get(
            "pinned", user, "master"
        )
        if known is not None:  # the homeserver stopped publishing their identity
            self._blacklist(device)
            return (
                f"Identity missing: {user} had a cross-signing identity (master key "
                f"{grouped(known)}) and the homeserver now shows none; none of their devices "
                "gets keys or is taken. If they really reset their identity, they set up "
                "cross-signing again (Element: Settings → Encryption) and an admin checks the "
                f"new key with them and runs `fleetwarden matrix trust {user} <master key>`."
            )
        if self._policy == "verified":
            if self._file.get("verified", user, device.id) == key:
                self._verify(device)
                return None
            self._blacklist(device)
            return (
                f"Not verified: {user}'s device {name} gets no keys and its commands are not "
                f"taken until an admin verifies it (`fleetwarden matrix trust {user} "
                f"{device.id} <its session key>`)."
            )
        return self._trusted(user, device, name)

    def _decide_by_identity(
        self, user: str, device: Any, identity: UserIdentity, name: str
    ) -> str | None:
        """The rules for a user who publishes cross-signing keys."""
        client = self._client
        master = identity.master_key
        vouched = self._file.get("identities", user, "master")
        usk = self._usk
        signed_by_bot = usk is not None and identity.signed_by(str(client.user_id), usk)
        accepted = vouched == master or signed_by_bot
        pinned = self._file.get("pinned", user, "master")
        if self._policy == "tofu" and not accepted:
            if vouched is None and pinned is None:
                self._file.put("pinned", user, "master", master)
                pinned = master
            accepted = vouched is None and pinned == master
        elif accepted and self._policy == "tofu" and pinned != master:
            self._file.put("pinned", user, "master", master)  # an admin accepted the new one
        changed = (vouched is not None and vouched != master) or (
            self._policy == "tofu" and pinned != master
        )
        if not accepted and changed:
            self._blacklist(device)
            return (
                f"Identity changed: {user}'s master key is now {grouped(master)}, not the one "
                f"{'verified' if vouched else 'first seen'}; none of their devices gets keys "
                "or is taken. If they really reset their identity, an admin checks the new "
                f"key with them and runs `fleetwarden matrix trust {user} <master key>`."
            )
        if not accepted:
            if self._file.get("verified", user, device.id) == str(device.ed25519):
                self._verify(device)  # an admin verified this one device
                return None
            self._blacklist(device)
            return (
                f"Identity not verified: {user} is not verified, so their devices get no keys and "
                "their commands are not taken until an admin verifies them: compare their "
                f"master key ({grouped(master)}) and run `fleetwarden matrix trust {user} "
                "<master key>`."
            )
        payload = self._device_keys.get((user, device.id))
        keys = payload.get("keys") if payload is not None else None
        if (
            payload is None
            or not isinstance(keys, dict)
            or keys.get(f"ed25519:{device.id}") != str(device.ed25519)
            or not identity.signs_device(payload)
        ):
            self._blacklist(device)
            return (
                f"Not signed: {user}'s device {name} is not signed by its owner, so it gets "
                "no keys and its commands are not taken. They verify it from one of their "
                "other sessions (Element: Settings → Sessions → Verify), or sign it out."
            )
        return self._trusted(user, device, name)

    def _trusted(self, user: str, device: Any, name: str) -> str | None:
        client, olm = self._client, self._client.olm
        assert olm is not None
        key = str(device.ed25519)
        first = self._file.get("seen", user, device.id) is None
        known_user = bool(self._file.devices("seen", user))
        if first:
            self._file.put("seen", user, device.id, key)
        if device.blacklisted:
            client.unblacklist_device(device)
        self._verify(device)
        if first and known_user:
            return (
                f"New device: {user} signed in on {name}; it now gets the keys of this room "
                f"(session key {grouped(key)}). If it is not theirs, remove it from their "
                "account at once."
            )
        return None

    def _blacklist(self, device: Any) -> None:
        """Give ``device`` no room keys. Read from the device first: nio's store reads three
        rows to find a state unchanged (every review, every send), and nio keeps the state
        it stores on the device itself, which is what it shares keys by."""
        if not device.blacklisted:
            self._client.blacklist_device(device)

    def _verify(self, device: Any) -> None:
        """Trust ``device`` (read from the device first, as :meth:`_blacklist`)."""
        if not device.verified:
            self._client.verify_device(device)

    def verify(self, user: str, device_id: str, key: str) -> None:
        """An admin's verification of ``user``'s ``device_id`` with its ed25519 ``key``."""
        self._file.put("verified", user, device_id, key.replace(" ", ""))

    def verify_identity(self, user: str, master_key: str) -> None:
        """Record that ``user``'s identity was verified (by SAS with an admin's confirmation,
        or ``fleetwarden matrix trust USER MASTER_KEY``) as the master key ``master_key``."""
        self._file.put("identities", user, "master", master_key.replace(" ", ""))

    def refusal(self, user: str, device_id: str | None) -> str | None:
        """Why a message from ``user``'s ``device_id`` is not taken, or None if it may be."""
        olm = self._client.olm
        if olm is None or device_id is None:
            return None
        if self._file.get("refused", user, device_id) is not None:
            return f"{user}'s device `{device_id}` is refused (its key changed)"
        device = self._client.device_store[user].get(device_id)
        if device is not None and device.blacklisted:
            return f"{user}'s device `{device_id}` is not trusted (see the room's notice)"
        if self._policy == "verified" and (device is None or not device.verified):
            return f"{user}'s device `{device_id}` is not verified"
        return None


def is_refusal(line: Announcement) -> bool:
    """Whether a review's line says a device gets no keys (all but a trusted new device)."""
    return not line.markdown.startswith("New device")
