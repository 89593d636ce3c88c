"""Which devices get the bot's room keys, and whose encrypted commands it takes.

The policy (``connectors.matrix.trust``): ``tofu`` trusts a device of a user with a role
the first time its keys are seen, and remembers its key; ``verified`` trusts only devices
an admin verified (``fleetwarden matrix trust``). Whatever the policy, a device of a user
without a role (a stranger in the room) is blacklisted, so nio never shares a room key with
it, and a known device whose ed25519 key changed is refused and announced (nio keeps the
first key it saw; the new one never gets a key). A newly trusted device of a known user is
announced in the rooms it shares with the bot, and the room's outbound session is rotated
so it can read what the bot sends next.

The decisions are kept in ``<crypto dir>/trust.json`` (mode 600): device → the key it was
trusted with, admin verifications, refusals. nio's store holds the resulting trust state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nio

log = logging.getLogger(__name__)

Policy = Literal["tofu", "verified"]
_KINDS = ("seen", "verified", "refused")


@dataclass(frozen=True, slots=True)
class Announcement:
    """A line to post in ``room`` about a device."""

    room: str
    markdown: str


class TrustFile:
    """``trust.json``: ``{"seen"|"verified"|"refused": {user: {device: ed25519}}}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, dict[str, str]]] = {kind: {} for kind in _KINDS}
        self._mtime: int | None = None
        self.refresh()

    def refresh(self) -> None:
        """Read the file again if it changed (``fleetwarden matrix trust`` wrote to it)."""
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._mtime:
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
        self._data[kind].setdefault(user, {})[device] = key
        self._save()

    def _save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf8") as file:
            json.dump(self._data, file, indent=1, sort_keys=True)
        os.replace(temporary, self.path)
        self._mtime = self.path.stat().st_mtime_ns


class DeviceTrust:
    """Applies the policy to nio's device store; one per connector."""

    def __init__(
        self,
        client: nio.AsyncClient,
        *,
        policy: Policy,
        has_role: Callable[[str], bool],
        directory: Path,
    ) -> None:
        self._client = client
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
                    told = (room_id, user, device.id, what)
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
            client.blacklist_device(device)
            return (
                f"Refused: the key of {user}'s device {name} changed since it was trusted; "
                "it gets no keys and its messages are not taken. If that is really their "
                "device, they log out of it and sign in again (a new device)."
            )
        if user == client.user_id or not self._has_role(user):
            client.blacklist_device(device)  # a stranger's device never gets a room key
            return None
        if self._policy == "verified":
            if self._file.get("verified", user, device.id) == key:
                client.verify_device(device)
                return None
            client.blacklist_device(device)
            return (
                f"Not verified: {user}'s device {name} gets no keys and its commands are not "
                f"taken until an admin verifies it (`fleetwarden matrix trust {user} "
                f"{device.id} <its session key>`)."
            )
        first = self._file.get("seen", user, device.id) is None
        known_user = bool(self._file.devices("seen", user))
        if first:
            self._file.put("seen", user, device.id, key)
        if olm.is_device_blacklisted(device):
            client.unblacklist_device(device)
        client.verify_device(device)
        if first and known_user:
            return (
                f"New device: {user} signed in on {name}; it now gets the keys of this room "
                f"(session key {_grouped(key)}). If it is not theirs, remove it from their "
                "account at once."
            )
        return None

    def verify(self, user: str, device_id: str, key: str) -> None:
        """An admin's verification of ``user``'s ``device_id`` with its ed25519 ``key``."""
        self._file.put("verified", user, device_id, key.replace(" ", ""))

    def refusal(self, user: str, device_id: str | None) -> str | None:
        """Why a message from ``user``'s ``device_id`` is not taken, or None if it may be."""
        olm = self._client.olm
        if olm is None or device_id is None:
            return None
        if self._file.get("refused", user, device_id) is not None:
            return f"{user}'s device `{device_id}` is refused (its key changed)"
        device = self._client.device_store[user].get(device_id)
        if self._policy == "verified" and (device is None or not olm.is_device_verified(device)):
            return f"{user}'s device `{device_id}` is not verified"
        return None


def _grouped(key: str) -> str:
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))
