"""The Matrix connector: operators command the fleet from Matrix rooms, one thread per agent.

Wires the parts together and owns the lifecycle: login (:mod:`.session`), served rooms
(:mod:`.rooms`), the sync task (:mod:`.sync`) feeding :meth:`MatrixConnector.inbound`,
posting (:mod:`.outbound`), and end-to-end encryption: the bot's device, its keys,
identity and verifications (:mod:`.device`).
Encrypted and unencrypted rooms behave the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from urllib.parse import quote

import nio

from connectors.base import (
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    SendResult,
    ThreadId,
    UserId,
)
from connectors.defaults import ConnectorDefaults
from connectors.errors import ConnectorError
from connectors.health import LinkHealth
from connectors.inbox import Inbox, cancel_and_wait
from connectors.matrix import session, wire
from connectors.matrix.config import MatrixConfig
from connectors.matrix.encryption import crypto
from connectors.matrix.encryption.cross_signing import BotIdentity
from connectors.matrix.encryption.device import BotDevice
from connectors.matrix.inbound.rooms import ConnectorState, RoleOf, ServedRooms
from connectors.matrix.inbound.sync import Secured, SyncLoop
from connectors.matrix.inbound.translate import CONNECTOR, Identity
from connectors.matrix.messages.direct import DirectRooms
from connectors.matrix.messages.outbound import TYPING_REFRESH_SECONDS, Outbound
from connectors.presence import TypingKeeper
from connectors.receiving import ReceiveFailures
from fleet.redaction.known import Secret
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)


class _State(enum.Enum):
    NEW = "not started"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"


class MatrixConnector(ConnectorDefaults):
    """A bot account on a Matrix homeserver, serving its configured and invited rooms."""

    def __init__(
        self,
        config: MatrixConfig,
        *,
        state: ConnectorState,
        clock: Clock,
        environ: Mapping[str, str],
        state_dir: Path,
        role_of: RoleOf,
        default_command_prefix: str = "!",
        announce: Callable[[str], Awaitable[object]] | None = None,
        failures: ReceiveFailures | None = None,
    ) -> None:
        """``role_of``: a Matrix user's role (``admin``/``operator``/``viewer``) or None.
        ``default_command_prefix``: the top-level prefix, used in the greeting when
        ``config.command_prefix`` is not set. ``announce``: where an operator's key
        verification is shown for an admin to compare (the console), besides
        ``fleetwarden matrix verify``. ``failures``: where an event that cannot be taken
        is reported (the app's record)."""
        self._config = config
        self._failures = failures
        self._state_store = state
        self._environ = environ
        self._state_dir = state_dir
        # No retries inside nio (by default it retries 429s and timeouts silently and
        # forever): the sync loop and the send path own retrying.
        self._client = nio.AsyncClient(
            config.homeserver, user=config.user_id, config=crypto.client_config(config, environ)
        )
        self._outbound = Outbound(
            self._client, clock, on_call=config.on_call, alert_style=config.alert_style
        )
        self._typing = TypingKeeper(
            self._say_typing, refresh=TYPING_REFRESH_SECONDS, name=CONNECTOR
        )
        prefix = config.command_prefix or default_command_prefix
        self._rooms = ServedRooms(
            self._client,
            state,
            role_of=role_of,
            post=self._post_markdown,
            hello=f"Hello — Fleetwarden is here. Type `{prefix}help`.",
            policy=config.encryption,
            post_clear=self._outbound.send_clear,
        )
        self._device = BotDevice(
            self._client,
            config,
            environ=environ,
            state_dir=state_dir,
            clock=clock,
            role_of=role_of,
            rooms=self._rooms,
            announce=announce,
        )
        self._direct = DirectRooms(
            self._client, state, self._post_markdown, encrypted=config.encryption != "off"
        )
        self._inbox = Inbox()
        self._link = LinkHealth(CONNECTOR, clock)
        self._sync: SyncLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._state = _State.NEW

    @property
    def name(self) -> str:
        return CONNECTOR

    @property
    def has_threads(self) -> bool:
        return True

    @property
    def home_room(self) -> RoomId | None:
        room = self._rooms.home_room
        return None if room is None else RoomId(room)

    @property
    def link(self) -> LinkHealth:
        """Up once logged in and synced; down from a sync that fails to one that works."""
        return self._link

    @property
    def bot_identity(self) -> BotIdentity | None:
        """The bot's cross-signing identity (None when encryption is off)."""
        return self._device.identity

    def known_secrets(self) -> list[Secret]:
        """The access token the bot is logged in with (a password login makes one that no
        variable holds), for the redactor."""
        token = self._client.access_token
        return [Secret(token, "Matrix access token")] if token else []

    async def start(self) -> None:
        """Log in, take the sync token, join the configured rooms, start syncing."""
        if self._state is not _State.NEW:
            raise RuntimeError("the Matrix connector starts once")
        self._state = _State.STARTING
        try:
            await session.log_in(self._client, self._config, self._environ, self._state_dir)
            new_device = await self._device.open()
            self._outbound.encryption = self._device.encryption
            said = await self._device.cross_sign()
            sync = SyncLoop(
                self._client,
                state=self._state_store,
                rooms=self._rooms,
                identity=Identity.of(self._config.user_id, await self._display_name()),
                emit=self._inbox.put,
                timeout_seconds=self._config.sync_timeout_seconds,
                secured=Secured(self._device.encryption, self._device.verifications),
                failures=self._failures,
            )
            sync.link = self._link
            # Take the first sync token before joining, so that everything after the bot's
            # own join event is acted on: the join is the operator's sign it is listening.
            await sync.prime()
            await self._rooms.join_configured(self._config.rooms)
            await self._rooms.restore_invited()
            if new_device:
                for room in self._rooms:
                    self._rooms.later(room, self._device.new_device_line())
            for room in self._rooms:
                if said:
                    self._rooms.later(room, said)
        except BaseException as exc:
            self._state = _State.STOPPED
            self._link.failed(exc)
            self._link.closed()
            await self._client.close()
            raise
        self._sync = sync
        self._task = asyncio.create_task(self._run(sync), name="matrix-sync")
        self._device.keep()
        self._state = _State.RUNNING
        self._link.connected()
        log.info("matrix: serving %s as %s", self._config.homeserver, self._config.user_id)

    async def _run(self, sync: SyncLoop) -> None:
        try:
            await sync.run()
        except Exception as exc:  # a bug, not an outage: end the stream loudly
            log.exception("matrix: the sync loop failed")
            self._link.lost(exc)
        finally:
            self._inbox.close()  # ends inbound(): the app stops

    async def stop(self) -> None:
        """Stop syncing and close the HTTP session. Safe to repeat."""
        if self._state is _State.STOPPED:
            return
        self._state = _State.STOPPED
        self._link.closed()
        task, self._task = self._task, None
        await cancel_and_wait(task)  # _run logs the sync loop's failures
        if self._sync is not None:
            await self._sync.flush()  # the token of what was handed over
        await self._device.stop()
        await self._typing.stop()
        await self._client.close()
        self._inbox.close()

    def inbound(self) -> AsyncIterator[InboundMessage]:
        return self._inbox.messages()

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        # An edit names only the event: it stays in the thread the original is in.
        self._check_running()
        await self._outbound.edit(room, event_id, markdown)

    async def send(self, message: OutboundMessage) -> SendResult:
        self._check_running()
        return await self._outbound.send(message)

    def can_send_private(self) -> bool:
        """A Matrix user can be written to alone, in a direct room."""
        return True

    async def send_private(self, user: UserId, markdown: str) -> bool:
        """``markdown`` to ``user`` alone, in the direct room with them (:mod:`.direct`)."""
        self._check_running()
        return await self._direct.send(user, markdown)

    async def send_image(
        self, room: RoomId, path: Path, thread_id: ThreadId | None = None
    ) -> EventId:
        """Upload the PNG at ``path`` and post it in ``room`` (in ``thread_id`` if given)."""
        self._check_running()
        return await self._outbound.send_image(room, path, thread_id)

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        self._check_running()
        return await self._outbound.open_thread(room, first_message)

    def typing(
        self, room: RoomId, thread: ThreadId | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        # Matrix typing notices are per room: a thread's work shows in its room.
        return self._typing.typing(room)

    async def mark_read(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> None:
        if self._state is _State.RUNNING:
            await self._outbound.mark_read(room, event_id, thread)

    async def _say_typing(self, room: str, on: bool) -> None:
        if self._state is _State.RUNNING:
            await self._outbound.say_typing(room, on)

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        """A matrix.to permalink to the thread's root, which Element opens as the thread."""
        return permalink(room, thread, via=self._config.user_id.partition(":")[2])

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        """A matrix.to permalink to the event (a thread's events are events of its room)."""
        return permalink(room, event_id, via=self._config.user_id.partition(":")[2])

    async def health(self) -> ConnectorHealth:
        if self._state is not _State.RUNNING or self._task is None or self._task.done():
            state = "sync stopped" if self._state is _State.RUNNING else self._state.value
            return ConnectorHealth(ok=False, detail=f"matrix: {state}")
        problem = await wire.versions(self._client)
        if problem is not None:
            return ConnectorHealth(ok=False, detail=problem)
        try:
            who = await wire.call(self._client.whoami(), nio.WhoamiResponse, "whoami")
        except ConnectorError as exc:
            return ConnectorHealth(ok=False, detail=str(exc))
        if who.user_id != self._config.user_id:
            return ConnectorHealth(
                ok=False, detail=f"logged in as {who.user_id}, not {self._config.user_id}"
            )
        failures = self._sync.failures if self._sync is not None else 0
        if failures:
            return ConnectorHealth(ok=False, detail=f"sync failing ({failures} attempts)")
        return ConnectorHealth(ok=True, detail=f"{who.user_id} on {self._config.homeserver}")

    def _check_running(self) -> None:
        if self._state is not _State.RUNNING:
            raise ConnectorError(f"the Matrix connector is {self._state.value}")

    async def _post_markdown(self, room: str, markdown: str) -> object:
        return await self._outbound.send(OutboundMessage(room=RoomId(room), markdown=markdown))

    async def _display_name(self) -> str | None:
        try:
            response = await self._client.get_displayname(self._config.user_id)
        except wire.TRANSIENT_EXCEPTIONS:
            return None
        name = getattr(response, "displayname", None)
        return name if isinstance(name, str) else None


def permalink(room: str, event: str, *, via: str) -> str:
    """``https://matrix.to/#/<room>/<event>?via=<server>``, the ids escaped as the spec's
    examples are, so that any client resolves it through ``via``."""
    return f"https://matrix.to/#/{quote(room, safe='!')}/{quote(event, safe='')}?via={via}"
