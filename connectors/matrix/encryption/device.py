"""The bot's encrypted device: at start, its crypto store opened (a lost store logs in as a
new device), the trust policy, encryption and verifications built over it, and its
cross-signing identity set up; while it runs, the task that answers verifications and
tells each room of an identity reset made from a shell.

The parts it builds: the device's crypto store (:mod:`.crypto`), the bot's cross-signing
identity (:mod:`.cross_signing`), key upkeep (:mod:`.e2ee`), the trust policy
(:mod:`.trust`) and key verification (:mod:`.verification`). Nothing here is built when the
config's encryption is off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import nio

from connectors.errors import ConnectorError
from connectors.inbox import cancel_and_wait
from connectors.matrix import session, wire
from connectors.matrix.config import MatrixConfig
from connectors.matrix.encryption import cross_signing, crypto
from connectors.matrix.encryption.cross_signing import BotIdentity, Outcome
from connectors.matrix.encryption.e2ee import Encryption
from connectors.matrix.encryption.signing import grouped
from connectors.matrix.encryption.trust import DeviceTrust
from connectors.matrix.inbound.rooms import RoleOf, ServedRooms
from connectors.matrix.verification.board import Board
from connectors.matrix.verification.service import Verifications
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)
STOP_CANCEL_SECONDS = 5.0  # cancelling running verifications at stop, at most
IDENTITY_CHECK_SECONDS = 5.0  # how often the key file is checked for a reset from a shell

__all__ = ["BotDevice"]


class BotDevice:
    """The bot's device keys, identity and verifications: :meth:`open`, :meth:`cross_sign`
    and :meth:`keep` at start, :meth:`stop` at the end. Its parts stay ``None`` until
    :meth:`open` builds them, and when encryption is off."""

    def __init__(
        self,
        client: nio.AsyncClient,
        config: MatrixConfig,
        *,
        environ: Mapping[str, str],
        state_dir: Path,
        clock: Clock,
        role_of: RoleOf,
        rooms: ServedRooms,
        announce: Callable[[str], Awaitable[object]] | None,
    ) -> None:
        self._client = client
        self._config = config
        self._environ = environ
        self._state_dir = state_dir
        self._clock = clock
        self._role_of = role_of
        self._rooms = rooms
        self._announce = announce
        self.identity: BotIdentity | None = None
        self.encryption: Encryption | None = None
        self.verifications: Verifications | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> bool:
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
        identity = BotIdentity(self._client, directory, self._passphrase())
        self.identity = identity
        try:
            trust = DeviceTrust(
                self._client,
                policy=self._config.trust,
                has_role=lambda user: self._role_of(user) is not None,
                directory=directory,
                bot_user_signing=identity.user_signing_public,
            )
        except ValueError as exc:
            raise crypto.CryptoStoreError(str(exc)) from exc
        rooms = self._rooms
        self.encryption = Encryption(
            self._client,
            trust,
            clock=self._clock,
            key_wait_seconds=self._config.key_wait_seconds,
            served=lambda: list(rooms),
            notices_in_clear=self._config.notices_in_clear,
        )
        # nio answers key verification events with its own SAS (to-device only, no request
        # or ready, no master keys) and cancels what it does not follow: ours takes them.
        olm = self._client.olm
        if olm is not None:
            olm.handle_key_verification = _leave_to_ours
        self.verifications = Verifications(
            self._client,
            trust=trust,
            has_role=lambda user: self._role_of(user) is not None,
            identity=identity,
            board=Board(directory / "verifications"),
            clock=self._clock,
            announce=self._announce,
            before_send=self.encryption.before_send,
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

    async def cross_sign(self) -> str:
        """Set up the bot's cross-signing identity (:mod:`.cross_signing`); the line to
        post in each room when operators must hear of it, else ""."""
        identity = self.identity
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

    def new_device_line(self) -> str:
        """What each room is told when the bot had to log in as a new device."""
        return (
            f"My encryption keys were lost, so I signed in as a new device, "
            f"`{self._client.device_id}` (session key {crypto.fingerprint(self._client)}). "
            "Messages sent to my old device cannot be read by me; verify this one "
            "(docs/matrix.md)."
        )

    def keep(self) -> None:
        """Start the background task of the bot's keys (when there are verifications)."""
        if self.verifications is not None:
            self._task = asyncio.create_task(
                self._keep_keys(self.verifications), name="matrix-verifications"
            )

    async def stop(self) -> None:
        """End the background task and cancel running verifications. Safe to repeat."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self.verifications is not None:
            try:  # their clients are told; a slow homeserver does not hold the stop up
                async with asyncio.timeout(STOP_CANCEL_SECONDS):
                    await self.verifications.close()
            except TimeoutError:
                log.warning("matrix: running verifications could not be cancelled in time")

    async def _keep_keys(self, verifications: Verifications) -> None:
        """The background task of the bot's keys: verifications, and an identity reset by
        ``fleetwarden matrix cross-sign --reset`` while the bot runs, told in each room."""
        run = asyncio.create_task(verifications.run(), name="matrix-verification-answers")
        try:
            while True:
                await asyncio.sleep(IDENTITY_CHECK_SECONDS)
                master = self.identity.changed() if self.identity is not None else None
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


def _leave_to_ours(event: object) -> None:
    """nio's key verification handler, replaced: :mod:`.verification` handles them."""


def _identity_changed_line(master: str) -> str:
    return (
        "My identity changed: my cross-signing keys were made anew (master key "
        f"{grouped(master)}), so your client shows that Fleetwarden's identity changed. "
        "If you verified me before, verify me again (docs/matrix.md)."
    )
