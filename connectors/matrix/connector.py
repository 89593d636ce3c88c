"""The Matrix connector: operators command the fleet from Matrix rooms, one thread per agent.

Wires the parts together and owns the lifecycle: login (:mod:`.session`), served rooms
(:mod:`.rooms`), the sync task (:mod:`.sync`) feeding :meth:`MatrixConnector.inbound`,
posting (:mod:`.outbound`), and end-to-end encryption: the device's crypto store
(:mod:`.crypto`), the bot's cross-signing identity (:mod:`.cross_signing`), key upkeep
(:mod:`.e2ee`) and the trust policy (:mod:`.trust`).
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
from connectors.errors import ConnectorError
from connectors.inbox import Inbox, cancel_and_wait
from connectors.matrix import cross_signing, crypto, session, wire
from connectors.matrix.config import MatrixConfig
from connectors.matrix.cross_signing import BotIdentity, Outcome
from connectors.matrix.direct import DirectRooms
from connectors.matrix.e2ee import Encryption
from connectors.matrix.outbound import TYPING_REFRESH_SECONDS, Outbound
from connectors.matrix.rooms import ConnectorState, RoleOf, ServedRooms
from connectors.matrix.signing import grouped
from connectors.matrix.sync import SyncLoop
from connectors.matrix.translate import CONNECTOR, Identity
from connectors.matrix.trust import DeviceTrust
from connectors.matrix.verification.board import Board
from connectors.matrix.verification.service import Verifications
from connectors.presence import TypingKeeper
from connectors.receiving import ReceiveFailures
from fleet.clock import Clock
from fleet.redaction.known import Secret

log = logging.getLogger(__name__)
STOP_CANCEL_SECONDS = 5.0  # cancelling running verifications at stop, at most
IDENTITY_CHECK_SECONDS = 5.0  # how often the key file is checked for a reset from a shell


class _State(enum.Enum):
    NEW = "not started"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"


class MatrixConnector:
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
        self._clock = clock
        self._role_of = role_of
        self._encryption: Encryption | None = None
        self._announce = announce
        self._verifications: Verifications | None = None
        self._verify_task: asyncio.Task[None] | None = None
        self._identity: BotIdentity | None = None
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
        self._direct = DirectRooms(
            self._client, state, self._post_markdown, encrypted=config.encryption != "off"
        )
        self._inbox = Inbox()
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
    def bot_identity(self) -> BotIdentity | None:
        """The bot's cross-signing identity (None when encryption is off)."""
        return self._identity

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
            new_device = await self._open_crypto()
            said = await self._cross_sign()
            sync = SyncLoop(
                self._client,
                state=self._state_store,
                rooms=self._rooms,
                identity=Identity.of(self._config.user_id, await self._display_name()),
                emit=self._inbox.put,
                timeout_seconds=self._config.sync_timeout_seconds,
                encryption=self._encryption,
                verifications=self._verifications,
                failures=self._failures,
            )
            # Take the first sync token before joining, so that everything after the bot's
            # own join event is acted on: the join is the operator's sign it is listening.
            await sync.prime()
            await self._rooms.join_configured(self._config.rooms)
            await self._rooms.restore_invited()
            if new_device:
                for room in self._rooms:
                    self._rooms.later(room, self._new_device_line())
            for room in self._rooms:
                if said:
                    self._rooms.later(room, said)
        except BaseException:
            self._state = _State.STOPPED
            await self._client.close()
            raise
        self._sync = sync
        self._task = asyncio.create_task(self._run(sync), name="matrix-sync")
        if self._verifications is not None:
            self._verify_task = asyncio.create_task(
                self._keep_keys(self._verifications), name="matrix-verifications"
            )
        self._state = _State.RUNNING
        log.info("matrix: serving %s as %s", self._config.homeserver, self._config.user_id)

    async def _open_crypto(self) -> bool:
        """Load the device's crypto store (when encryption is not off). True when the store
        was lost and the bot logged in as a new device (each room is then told)."""
        if self._config.encryption == "off":
            return False
        directory = crypto.store_dir(self._state_dir)
        opened = await crypto.open_store(self._client, directory)
        lost = opened is crypto.Opened.LOST
        if lost:
            await session.log_in_as_new_device(
                self._client, self._config, self._environ, self._state_dir
            )
            opened = await crypto.open_store(self._client, directory)
            if opened is crypto.Opened.LOST:
                raise crypto.CryptoStoreError("the new device's keys are already on the server")
        self._identity = BotIdentity(self._client, directory, self._passphrase())
        try:
            trust = DeviceTrust(
                self._client,
                policy=self._config.trust,
                has_role=lambda user: self._role_of(user) is not None,
                directory=directory,
                bot_user_signing=self._identity.user_signing_public,
            )
        except ValueError as exc:
            raise crypto.CryptoStoreError(str(exc)) from exc
        self._encryption = Encryption(
            self._client,
            trust,
            clock=self._clock,
            key_wait_seconds=self._config.key_wait_seconds,
            served=lambda: list(self._rooms),
            notices_in_clear=self._config.notices_in_clear,
        )
        self._outbound.encryption = self._encryption
        # nio answers key verification events with its own SAS (to-device only, no request
        # or ready, no master keys) and cancels what it does not follow: ours takes them.
        olm = self._client.olm
        if olm is not None:
            olm.handle_key_verification = _leave_to_ours
        identity = self._identity
        self._verifications = Verifications(
            self._client,
            trust=trust,
            has_role=lambda user: self._role_of(user) is not None,
            identity=identity,
            board=Board(directory / "verifications"),
            clock=self._clock,
            announce=self._announce,
            before_send=self._encryption.before_send,
        )
        # Keys on the server before the bot joins anywhere: the first message an operator
        # sends after seeing the join must already be encrypted for this device.
        if self._client.should_upload_keys:
            await wire.call(
                self._client.keys_upload(), nio.KeysUploadResponse, "upload device keys"
            )
        log.info(
            "matrix: end-to-end encryption on: device %s, %s (fingerprint %s)",
            self._client.device_id,
            opened.value,
            crypto.fingerprint(self._client),
        )
        return lost

    def _passphrase(self) -> str | None:
        name = self._config.store_passphrase_env
        return self._environ.get(name) if name is not None else None

    async def _cross_sign(self) -> str:
        """Set up the bot's cross-signing identity (:mod:`.cross_signing`); the line to
        post in each room when operators must hear of it, else ""."""
        identity = self._identity
        if identity is None:
            return ""
        name = self._config.password_env
        password = self._environ.get(name) if name is not None else None
        try:
            outcome, keys = await cross_signing.set_up(
                self._client,
                crypto.store_dir(self._state_dir),
                passphrase=self._passphrase(),
                password=password,
            )
        except crypto.CryptoStoreError:
            raise
        except ConnectorError as exc:
            log.warning("matrix: cross-signing not set up (%s); the device stays unsigned", exc)
            return ""
        identity.adopt(keys)
        if outcome is Outcome.RESET and keys is not None:
            return _identity_changed_line(keys.public("master"))
        if outcome is Outcome.NEEDS_RESET:
            return (
                "My device is not signed by its owner: the homeserver holds cross-signing keys "
                "for me that I do not have, and I log in with an access token, so I cannot "
                "replace them. An admin runs `fleetwarden matrix cross-sign --config …` on my "
                "host (it asks for my password); until then clients warn about my messages."
            )
        return ""

    async def _keep_keys(self, verifications: Verifications) -> None:
        """The background task of the bot's keys: verifications, and an identity reset by
        ``fleetwarden matrix cross-sign --reset`` while the bot runs, told in each room."""
        run = asyncio.create_task(verifications.run(), name="matrix-verification-answers")
        try:
            while True:
                await asyncio.sleep(IDENTITY_CHECK_SECONDS)
                master = self._identity.changed() if self._identity is not None else None
                if master is None:
                    continue
                log.warning("matrix: the bot's cross-signing identity changed (a reset)")
                for room in list(self._rooms):
                    try:
                        await self._rooms.say(room, _identity_changed_line(master))
                    except ConnectorError as exc:
                        log.warning("matrix: telling %s of the new identity failed: %s", room, exc)
        finally:
            await cancel_and_wait(run)

    def _new_device_line(self) -> str:
        return (
            f"My encryption keys were lost, so I signed in as a new device, "
            f"`{self._client.device_id}` (session key {crypto.fingerprint(self._client)}). "
            "Messages sent to my old device cannot be read by me; verify this one "
            "(docs/matrix.md)."
        )

    async def _run(self, sync: SyncLoop) -> None:
        try:
            await sync.run()
        except Exception:  # a bug, not an outage: end the stream loudly
            log.exception("matrix: the sync loop failed")
        finally:
            self._inbox.close()  # ends inbound(): the app stops

    async def stop(self) -> None:
        """Stop syncing and close the HTTP session. Safe to repeat."""
        if self._state is _State.STOPPED:
            return
        self._state = _State.STOPPED
        task, self._task = self._task, None
        await cancel_and_wait(task)  # _run logs the sync loop's failures
        verify_task, self._verify_task = self._verify_task, None
        await cancel_and_wait(verify_task)
        if self._verifications is not None:
            try:  # their clients are told; a slow homeserver does not hold the stop up
                async with asyncio.timeout(STOP_CANCEL_SECONDS):
                    await self._verifications.close()
            except TimeoutError:
                log.warning("matrix: running verifications could not be cancelled in time")
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


def _leave_to_ours(event: object) -> None:
    """nio's key verification handler, replaced: :mod:`.verification` handles them."""


def permalink(room: str, event: str, *, via: str) -> str:
    """``https://matrix.to/#/<room>/<event>?via=<server>``, the ids escaped as the spec's
    examples are, so that any client resolves it through ``via``."""
    return f"https://matrix.to/#/{quote(room, safe='!')}/{quote(event, safe='')}?via={via}"


def _identity_changed_line(master: str) -> str:
    return (
        "My identity changed: my cross-signing keys were made anew (master key "
        f"{grouped(master)}), so your client shows that Fleetwarden's identity changed. "
        "If you verified me before, verify me again (docs/matrix.md)."
    )
