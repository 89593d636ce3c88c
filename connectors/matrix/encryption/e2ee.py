"""End-to-end encryption at work: key upkeep after each sync, messages the bot cannot read
yet, and which decrypted messages it may take.

After every sync (:meth:`Encryption.after_sync`), as a Matrix client must: upload one-time
keys when the server runs low, query the keys of users whose devices changed, claim keys
to open Olm sessions, send queued to-device messages, then apply the trust policy
(:mod:`.trust`) to the members of every served encrypted room. The key query is made raw
so that the users' cross-signing identities reach the trust policy too.

A message whose Megolm session the bot lacks (it joined late, or the sender's device never
shared it) is asked for from the sender's devices with a room-key request, as Element does,
and tried again after each sync; if the key has not come within ``key_wait_seconds`` the
room is told whose message could not be read. Bounded: at most :data:`MAX_PENDING` wait.
A key the sender's client withheld on purpose (:mod:`.withheld`) is not waited for: the
room is told at once whose message it was, why and what fixes it, once per session. These
key notices go in clear when the config allows it (``key_notices``), so that a client
that will not read the bot's encrypted messages still sees them.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import nio

from connectors.errors import ConnectorError
from connectors.matrix import wire
from connectors.matrix.encryption import withheld
from connectors.matrix.encryption.trust import Announcement, DeviceTrust, is_refusal
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

MAX_PENDING = 256


@dataclass(slots=True)
class _Waiting:
    room: str
    event: Any  # nio.MegolmEvent
    deadline: float


class Encryption:
    """One connector's E2EE upkeep (only made when encryption is on and the store loaded)."""

    def __init__(
        self,
        client: nio.AsyncClient,
        trust: DeviceTrust,
        *,
        clock: Clock,
        key_wait_seconds: float,
        served: Callable[[], Iterable[str]],
        notices_in_clear: bool = False,
    ) -> None:
        """``notices_in_clear``: post key notices unencrypted in encrypted rooms."""
        self._client = client
        self.trust = trust
        self._clock = clock
        self._wait = key_wait_seconds
        self._served = served
        self._waiting: OrderedDict[str, _Waiting] = OrderedDict()  # event id → wait
        self._said: list[Announcement] = []
        self._queried_all = False
        self._clear = notices_in_clear
        self._withheld = withheld.WithheldKeys()
        # Told each waiting message that failed for another reason than its key.
        self.on_failure: Callable[[str, Exception], None] = _unreported

    def is_encrypted(self, room: str) -> bool:
        known = self._client.rooms.get(room)
        return known is not None and bool(known.encrypted)

    async def after_sync(self, to_device: Iterable[Any] = ()) -> list[Announcement]:
        """Key upkeep and the trust review; the lines to post (announcements, and messages
        that could not be read). ``to_device``: the sync's to-device events."""
        self._note_withheld(to_device)
        client = self._client
        if client.should_upload_keys:
            await wire.call(client.keys_upload(), nio.KeysUploadResponse, "upload device keys")
        await self.query_keys()
        if client.should_claim_keys:
            await wire.call(
                client.keys_claim(client.get_users_for_key_claiming()),
                nio.KeysClaimResponse,
                "claim one-time keys",
            )
        try:
            await client.send_to_device_messages()
        except wire.TRANSIENT_EXCEPTIONS as exc:
            raise ConnectorError(f"send to-device messages: {exc!r}") from exc
        said, self._said = self._said, []
        said += self._readable(self.trust.review(r for r in self._served() if self.is_encrypted(r)))
        return said + self._expired()

    async def query_keys(self) -> None:
        """Query the keys of the users whose devices changed (all tracked users once after
        start: cross-signing identities are not kept in nio's store).

        Made raw and fed to nio as its own answer: nio's ``KeysQueryResponse`` drops the
        cross-signing keys, which the trust policy needs from the same answer."""
        client, olm = self._client, self._client.olm
        if olm is None:
            return
        if not self._queried_all:
            self._queried_all = True
            olm.users_for_key_query.update(olm.tracked_users)
        users = sorted(client.users_for_key_query)
        if not users:
            return
        body: dict[str, Any] = {"device_keys": {user: [] for user in users}}
        answer = await wire.raw_json(client, "POST", "/_matrix/client/v3/keys/query", body)
        response = nio.KeysQueryResponse.from_dict(answer) if isinstance(answer, dict) else None
        if not isinstance(response, nio.KeysQueryResponse):
            raise ConnectorError("query keys: the homeserver's answer is not a key list")
        await client.receive_response(response)
        self.trust.note_keys(response)
        self.trust.note_identities(answer)

    async def before_send(self, room: str) -> None:
        """Make sure every device in ``room`` has a trust decision before a room key is
        shared there (nio refuses to share while one is undecided)."""
        if not self.is_encrypted(room):
            return
        known = self._client.rooms[room]
        if not known.members_synced:
            await wire.call(
                self._client.joined_members(room), nio.JoinedMembersResponse, "list members"
            )
        await self.query_keys()
        self._said += self._readable(self.trust.review([room]))

    @property
    def notices_in_clear(self) -> bool:
        return self._clear

    def _readable(self, lines: list[Announcement]) -> list[Announcement]:
        """A refusal is about a device that gets no room keys: it goes in clear when key
        notices may, or the one it concerns could never read it."""
        return [replace(line, clear=self._clear) if is_refusal(line) else line for line in lines]

    def said(self) -> list[Announcement]:
        """The lines to post that came up since the last call (a withheld key's notice)."""
        said, self._said = self._said, []
        return said

    def unreadable(self, room: str, event: Any) -> None:
        """An event the bot could not decrypt: ask for its key, and wait for it — unless
        the sender's client said it withheld the key."""
        event_id = str(getattr(event, "event_id", ""))
        if not event_id or event_id in self._waiting:
            return
        known = self._withheld.find(room, event)
        if known is not None:
            self._tell_withheld(known, room, event)
            return
        self._waiting[event_id] = _Waiting(room, event, self._clock.monotonic() + self._wait)
        while len(self._waiting) > MAX_PENDING:
            _, dropped = self._waiting.popitem(last=False)
            self._said.append(self._could_not_read(dropped))
        log.info("matrix: asking for the key of %s in %s", event_id, room)

    async def request_keys(self) -> None:
        """Send the room-key requests of the messages waiting for one (once each)."""
        for waiting in list(self._waiting.values()):
            event = waiting.event
            if event.session_id in self._client.outgoing_key_requests:
                continue
            try:
                response = await self._client.request_room_key(event)
            except nio.LocalProtocolError:
                continue  # already asked for this session
            except wire.TRANSIENT_EXCEPTIONS as exc:
                log.info("matrix: a room-key request failed: %r", exc)
                return
            if not isinstance(response, nio.RoomKeyRequestResponse):
                log.info("matrix: a room-key request failed: %s", wire.describe(response))

    def now_readable(self) -> list[tuple[str, dict[str, Any]]]:
        """Messages whose key has come since: (room, decrypted event JSON), oldest first.
        A message that fails otherwise than for its missing key stops waiting: it is
        reported to ``on_failure`` (its event id, the error) and the room is told."""
        readable: list[tuple[str, dict[str, Any]]] = []
        for event_id, waiting in list(self._waiting.items()):
            try:
                decrypted = self._client.decrypt_event(waiting.event)
            except nio.EncryptionError:  # the key is still missing: keep waiting
                continue
            except Exception as exc:  # waiting longer cannot mend it: say so now
                del self._waiting[event_id]
                self.on_failure(event_id, exc)
                self._said.append(self._could_not_read(waiting))
                continue
            source = getattr(decrypted, "source", None)
            if isinstance(source, dict):
                del self._waiting[event_id]
                readable.append((waiting.room, source))
        return readable

    def _expired(self) -> list[Announcement]:
        now = self._clock.monotonic()
        gone = [key for key, waiting in self._waiting.items() if waiting.deadline <= now]
        return [self._could_not_read(self._waiting.pop(key)) for key in gone]

    def _note_withheld(self, to_device: Iterable[Any]) -> None:
        """Take the withheld notices among to-device events; a message already waiting
        for that key is reported now."""
        for event in to_device:
            source = getattr(event, "source", None)
            if not isinstance(source, dict):
                continue
            notice = withheld.parse(
                str(source.get("type", "")), str(source.get("sender", "")), source.get("content")
            )
            if notice is None:
                continue
            log.info("matrix: %s withheld a room key (%s)", notice.sender, notice.code)
            self._withheld.note(notice)
            for event_id, waiting in list(self._waiting.items()):
                if self._withheld.matches(notice, waiting.room, waiting.event):
                    del self._waiting[event_id]
                    self._tell_withheld(notice, waiting.room, waiting.event)

    def _tell_withheld(self, notice: withheld.Withheld, room: str, event: Any) -> None:
        if self._withheld.first_time(notice):
            stamp = getattr(event, "server_timestamp", 0)
            self._said.append(Announcement(room, withheld.line(notice, stamp), self._clear))

    def _could_not_read(self, waiting: _Waiting) -> Announcement:
        event = waiting.event
        stamp = getattr(event, "server_timestamp", 0)
        text = withheld.waited_line(str(event.sender), stamp, self._wait)
        return Announcement(waiting.room, text, self._clear)

    def refusal(self, event: Any) -> str | None:
        """Why a decrypted message is not taken (its device is refused or unverified)."""
        sender = str(getattr(event, "sender", ""))
        sender_key = getattr(event, "sender_key", None)
        device_id = None
        for device in self._client.device_store.active_user_devices(sender):
            if device.curve25519 == sender_key:
                device_id = device.id
        return self.trust.refusal(sender, device_id)


def _unreported(event_id: str, error: Exception) -> None:
    log.error("matrix: event %s could not be decrypted: %r", event_id, error)
