"""The long-lived ``/sync`` loop: new messages in served rooms become inbound, in order.

Owns the sync token (connector state ``next_batch``), gap filling when a room's timeline
is ``limited``, de-duplication of replayed events, and the reconnect policy: capped
exponential backoff with jitter on transport and server errors, a fatal stop when the
access token is rejected.

A sync's messages are handed over first and its token saved after, in the background
(:data:`SAVE_AFTER_SECONDS` later, the newest token at a time; at once when the connector
stops): the handlers' own ledger writes — each event's claim — never queue behind the
token's, and a burst of syncs writes it once. A crash before the save replays those
messages at the next start; the ledger's claim of each event (the router's, the approval
desk's) makes handling them exactly once. Saving first would lose them instead.

One event that cannot be taken (an error no retry mends) is reported to the app's
:class:`~connectors.receiving.ReceiveFailures` with its id and skipped: the events after
it, and the syncs after this one, go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nio

from connectors.base import InboundMessage
from connectors.errors import ConnectorAuthError, ConnectorError, RateLimited
from connectors.health import LinkHealth
from connectors.inbox import cancel_and_wait, let_readers_start
from connectors.matrix import wire
from connectors.matrix.encryption.e2ee import Encryption
from connectors.matrix.inbound import translate
from connectors.matrix.inbound.backoff import Backoff
from connectors.matrix.inbound.rooms import ConnectorState, ServedRooms
from connectors.matrix.inbound.translate import CONNECTOR, Identity, RecentIds, ThreadMemory
from connectors.matrix.messages.payloads import JsonDict
from connectors.matrix.verification.service import Verifications, is_verification
from connectors.receiving import ReceiveFailures

log = logging.getLogger(__name__)

TOKEN_KEY = "next_batch"
SYNC_FILTER: JsonDict = {"room": {"timeline": {"limit": 100}}}
"""The default timeline limit is 10: a burst of commands between two syncs would be lost."""
GAP_PAGE = 100
GAP_PAGES = 20
_RETRYABLE: tuple[type[Exception], ...] = (ConnectorError, *wire.TRANSIENT_EXCEPTIONS)


_MAX_SERVER_WAIT = 300.0  # seconds: the longest rate-limit wait we accept from a reply
SAVE_AFTER_SECONDS = 1.0
"""How long after a sync its token is saved (see the module)."""


@dataclass(frozen=True, slots=True)
class Secured:
    """What the bot's device adds to each sync: ``encryption``, the E2EE upkeep after it
    (``None``: encryption is off), and ``verifications``, where key verification events go
    (never to the commands)."""

    encryption: Encryption | None = None
    verifications: Verifications | None = None


class SyncLoop:
    """One connector's sync task body: :meth:`prime` at start, then :meth:`run` until cancelled."""

    def __init__(
        self,
        client: nio.AsyncClient,
        *,
        state: ConnectorState,
        rooms: ServedRooms,
        identity: Identity,
        emit: Callable[[InboundMessage], None],
        timeout_seconds: float,
        backoff: Backoff | None = None,
        secured: Secured | None = None,
        failures: ReceiveFailures | None = None,
    ) -> None:
        """``secured``: what the bot's device adds to each sync (``None``: nothing).
        ``failures``: where an event that cannot be taken is reported."""
        secured = secured if secured is not None else Secured()
        encryption = secured.encryption
        self._client = client
        self._state = state
        self._rooms = rooms
        self._emit = emit
        self._pending: list[InboundMessage] = []  # this sync's messages, until its token is saved
        self._timeout = timeout_seconds
        self._backoff = backoff if backoff is not None else Backoff()
        self._recent = RecentIds()
        self._encryption = encryption
        self._verifications = secured.verifications
        self._full_state = encryption is not None  # nio must learn every room's state once
        self._refused: set[tuple[str, str]] = set()
        self._plain_warned: set[str] = set()
        self._threads = ThreadMemory()
        self._since: str | None = None  # the token of the last sync handed over
        self._saved: str | None = None  # the token in the ledger
        self._saver: asyncio.Task[None] | None = None
        self._me = identity
        self.link: LinkHealth | None = None
        """The connector's link (:mod:`connectors.health`), when it gives one: marked
        connected at each sync that works, lost at each that fails, an event at each
        message handed over."""
        self._failures = failures if failures is not None else ReceiveFailures()
        if encryption is not None:
            encryption.on_failure = self._failed

    @property
    def failures(self) -> int:
        """Syncs failed in a row just now (0: the last one worked)."""
        return self._backoff.failures

    async def prime(self) -> None:
        """Load the saved token; on a first start, take one from a sync and act on nothing in it."""
        self._since = self._saved = await self._state.get_connector_state(CONNECTOR, TOKEN_KEY)
        if self._since is not None:
            return
        response = await self._sync(None, timeout_ms=0)
        self._since = str(response.next_batch)
        await self._save_token()
        log.info("matrix: first start; history before now is ignored")

    async def run(self) -> None:
        """Sync until cancelled, or until the homeserver rejects the bot's token."""
        while True:
            try:
                response = await self._sync(self._since, timeout_ms=int(self._timeout * 1000))
                self._full_state = False
                self._pending = []
                encryption = self._encryption
                said = await encryption.after_sync(response.to_device_events) if encryption else []
                if self._verifications is not None:
                    for event in response.to_device_events:
                        source = getattr(event, "source", None)
                        if isinstance(source, dict) and is_verification(source):
                            await self._verifications.on_to_device(source)
                await self._handle(response)
                if encryption is not None:
                    for room, source in encryption.now_readable():
                        await self._room_events(room, [(source, None)])
                    await encryption.request_keys()
                    said += encryption.said()  # a withheld key's notice: now, not next sync
                handed, self._pending = self._pending, []
                if self.link is not None:
                    self.link.connected()
                    if handed:
                        self.link.event()
                for message in handed:
                    self._emit(message)
                self._since = str(response.next_batch)
                self._save_soon()
                if handed:
                    await let_readers_start()
                for line in said:
                    await self._rooms.say(line.room, line.markdown, clear=line.clear)
            except ConnectorAuthError as exc:
                log.error("matrix: %s — stopping; fix the bot's credentials", exc)
                if self.link is not None:
                    self.link.lost(exc, logged_out=True)
                return
            except _RETRYABLE as exc:
                if self.link is not None:
                    self.link.lost(exc)
                delay = self._backoff.next_delay()
                if isinstance(exc, RateLimited):
                    # Honour the server, but a bogus huge wait must not stop us for good.
                    delay = max(delay, min(exc.retry_after, _MAX_SERVER_WAIT))
                level = logging.WARNING if self._backoff.failures == 1 else logging.INFO
                log.log(level, "matrix: sync failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if self._backoff.failures:
                log.warning("matrix: sync works again after %d failures", self._backoff.failures)
                self._backoff.reset()

    async def _sync(self, since: str | None, *, timeout_ms: int) -> Any:
        # nio gives a timeout-0 sync no client-side deadline at all: bound every sync here.
        async with asyncio.timeout(timeout_ms / 1000 + 30):
            response = await self._client.sync(
                timeout=timeout_ms,
                since=since,
                sync_filter=SYNC_FILTER,
                full_state=self._full_state or None,
            )
        return wire.expect(response, nio.SyncResponse, "sync")

    async def flush(self) -> None:
        """Save the token of the last sync handed over now (the connector stops); a ledger
        that cannot take it is logged: the next start replays that sync's messages."""
        saver, self._saver = self._saver, None
        await cancel_and_wait(saver)
        try:
            await self._save_token()
        except Exception as exc:
            log.warning(
                "matrix: the sync token was not saved (%s); the next start reads "
                "the last messages again, and handles each once",
                exc,
            )

    def _save_soon(self) -> None:
        if self._saver is None and self._since != self._saved:
            self._saver = asyncio.create_task(self._save_later(), name="matrix-sync-token")

    async def _save_later(self) -> None:
        """Save the newest token :data:`SAVE_AFTER_SECONDS` after a sync, until saved."""
        try:
            while self._since != self._saved:
                await asyncio.sleep(SAVE_AFTER_SECONDS)
                try:
                    await self._save_token()
                except Exception as exc:  # the ledger is away: tried again with the next
                    log.warning("matrix: the sync token was not saved (%s); trying again", exc)
        finally:
            if self._saver is asyncio.current_task():
                self._saver = None

    async def _save_token(self) -> None:
        token = self._since
        if token is not None and token != self._saved:
            await self._state.set_connector_state(CONNECTOR, TOKEN_KEY, token)
            self._saved = token

    async def _handle(self, response: Any) -> None:
        """Emit the new messages of one sync, then answer invites and note departures."""
        for room, info in response.rooms.join.items():
            if room not in self._rooms:
                continue
            events = [(_source(event), event) for event in info.timeline.events]
            # Nothing before our own join matters, so a timeline that has it needs no gap
            # read (Synapse marks a newly joined room's first timeline as limited).
            joined_now = any(translate.is_own_join(e, self._me.user_id) for e, _ in events)
            if (
                info.timeline.limited
                and info.timeline.prev_batch
                and self._since
                and not joined_now
            ):
                missed = await self._gap(room, str(info.timeline.prev_batch), self._since)
                events = missed + events
            await self._room_events(str(room), events)
        await self._rooms.after_sync(set(response.rooms.join))
        for room in response.rooms.leave:
            await self._rooms.on_left(str(room))
        for room, info in response.rooms.invite.items():
            state = [_source(event) for event in info.invite_state]
            await self._rooms.on_invite(str(room), translate.inviter(state, self._me.user_id))

    async def _gap(self, room: str, prev_batch: str, since: str) -> list[tuple[JsonDict, Any]]:
        """Events between the last sync and this one's truncated timeline, oldest first."""
        newest_first: list[tuple[JsonDict, Any]] = []
        token = prev_batch
        for _ in range(GAP_PAGES):
            page = await wire.call(
                self._client.room_messages(
                    room,
                    start=token,
                    end=since,
                    direction=nio.MessageDirection.back,
                    limit=GAP_PAGE,
                ),
                nio.RoomMessagesResponse,
                f"fetch missed messages in {room}",
            )
            chunk = [(_source(event), event) for event in page.chunk]
            newest_first.extend(chunk)
            joined_here = any(translate.is_own_join(e, self._me.user_id) for e, _ in chunk)
            if joined_here or not chunk or not page.end or page.end == token:
                break
            token = str(page.end)
        else:
            log.warning(
                "matrix: more than %d messages missed in %s; only the newest are read",
                GAP_PAGE * GAP_PAGES,
                room,
            )
        log.info("matrix: read %d missed events in %s", len(newest_first), room)
        return newest_first[::-1]

    async def _room_events(self, room: str, events: list[tuple[JsonDict, Any]]) -> None:
        """Turn one room's new events into inbound messages. ``events`` pairs each event's
        JSON with nio's object for it (``None`` for one decrypted late)."""
        # Events before the bot's own join are history it was not there for — but for a
        # verification request: Element sends it into the DM it made before the bot joins.
        for index in range(len(events) - 1, -1, -1):
            if translate.is_own_join(events[index][0], self._me.user_id):
                for event, _ in events[:index]:
                    await self._verification(room, event)
                events = events[index + 1 :]
                break
        for event, parsed in events:
            try:
                if not await self._room_event(room, event, parsed):
                    return
            except _RETRYABLE:
                raise  # an outage: the whole sync is tried again
            except Exception as exc:  # this event only: the rest of the sync goes on
                self._failed(str(event.get("event_id") or ""), exc)

    async def _room_event(self, room: str, event: JsonDict, parsed: Any) -> bool:
        """Take one event of ``room``; False when the room is left and its events end."""
        encryption = self._encryption
        if translate.turns_on_encryption(event) and not await self._rooms.on_encryption(room):
            return False
        if await self._verification(room, event):
            return True
        if translate.is_encrypted(event):
            sender = str(event.get("sender"))
            if (
                encryption is not None
                and parsed is not None
                and sender != self._me.user_id
                and self._rooms.has_role(sender)
            ):
                encryption.unreadable(room, parsed)
            return True
        message = translate.to_inbound(event, room, self._me, self._threads)
        if message is None or message.event_id is None or message.event_id in self._recent:
            return True
        if (
            encryption is not None
            and encryption.is_encrypted(room)
            and not await self._taken_encrypted(room, parsed)
        ):
            return True
        self._recent.add(message.event_id)
        self._pending.append(message)
        return True

    def _failed(self, event_id: str, error: Exception) -> None:
        self._failures.failed(CONNECTOR, event_id or None, error)

    async def _verification(self, room: str, event: JsonDict) -> bool:
        """Hand a key verification event to the verifications (never to the commands);
        False if ``event`` is not one."""
        if not is_verification(event):
            return False
        if self._verifications is not None:
            await self._verifications.on_room_event(room, event)
        return True

    async def _taken_encrypted(self, room: str, parsed: Any) -> bool:
        """Whether a message in an encrypted room may be taken: it was encrypted (a message
        sent in clear there is not trusted) by a device that is not refused."""
        assert self._encryption is not None
        if parsed is not None and not getattr(parsed, "decrypted", False):
            if room not in self._plain_warned:
                self._plain_warned.add(room)
                log.warning("matrix: ignoring unencrypted messages in encrypted room %s", room)
            return False
        why = self._encryption.refusal(parsed) if parsed is not None else None
        if why is None:
            return True
        if (room, why) not in self._refused:
            self._refused.add((room, why))
            await self._rooms.say(
                room,
                f"Not taken: {why}; messages from it are ignored.",
                clear=self._encryption.notices_in_clear,
            )
        return False


def _source(event: Any) -> JsonDict:
    """The event's JSON. nio's invite-state parser pops ``content`` out of ``source`` (it
    survives only as an attribute): put it back."""
    source = getattr(event, "source", None)
    if not isinstance(source, dict):
        return {}
    content = getattr(event, "content", None)
    if "content" not in source and isinstance(content, dict):
        return {**source, "content": content}
    return source
