"""The bot's own cross-signing identity: its keys on disk, on the homeserver, and its
device signed by them, so that Element shows the bot's device as verified by its owner.

The three private keys (:class:`~connectors.matrix.encryption.signing.CrossSigningKeys`) live in
``<crypto dir>/cross_signing.json`` (0600, sealed with ``store_passphrase_env``'s passphrase
when set). :func:`set_up` makes the homeserver agree with that file: it uploads keys the
server lacks, makes new keys when there are none, resets the identity (new keys, uploaded
with the bot's password as interactive auth) when the server holds a master key that is
not in the file, and signs the bot's device with the self-signing key. Without a password
(an access-token login) a foreign master key is left alone: :data:`Outcome.NEEDS_RESET`
says that ``fleetwarden matrix cross-sign`` must be run. Private keys are never logged.

:class:`BotIdentity` is what the rest of the connector uses: the keys (read again when
``fleetwarden matrix cross-sign`` rewrote the file) and :meth:`BotIdentity.sign_user`.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
from pathlib import Path
from typing import Any

import nio

from connectors.errors import ConnectorError
from connectors.matrix import wire
from connectors.matrix.encryption.crypto import CryptoStoreError
from connectors.matrix.encryption.signing import (
    CrossSigningKeys,
    JsonDict,
    SigningError,
    UserIdentity,
    identities,
    verified,
)
from fleet.private_files import write_private

log = logging.getLogger(__name__)

KEY_FILE = "cross_signing.json"
# New keys wait here until the homeserver took them: a failed reset (a wrong password, an
# outage) leaves the working keys in place, and a crash right after the upload is
# finished at the next start.
STAGED_FILE = "cross_signing.new.json"
_UPLOAD = "/_matrix/client/v3/keys/device_signing/upload"
_SIGNATURES = "/_matrix/client/v3/keys/signatures/upload"


class Outcome(enum.Enum):
    READY = "the bot's cross-signing keys are in place"
    MADE = "new cross-signing keys made and uploaded"
    RESET = "the bot's identity was reset (new cross-signing keys)"
    NEEDS_RESET = "the homeserver holds a master key that is not in the bot's key file"


def key_path(directory: Path) -> Path:
    return directory / KEY_FILE


def load_keys(
    directory: Path, passphrase: str | None, *, name: str = KEY_FILE
) -> CrossSigningKeys | None:
    """The keys in the crypto dir, None when there is no key file. Raises
    :class:`CryptoStoreError` naming the fix when the file cannot be used."""
    path = directory / name
    try:
        body = json.loads(path.read_text(encoding="utf8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CryptoStoreError(_unusable(path, f"it cannot be read ({exc})")) from exc
    if not isinstance(body, dict):
        raise CryptoStoreError(_unusable(path, "it is not a JSON object"))
    try:
        return CrossSigningKeys.unsealed(body, passphrase)
    except SigningError as exc:
        raise CryptoStoreError(_unusable(path, str(exc))) from exc


def save_keys(
    directory: Path, keys: CrossSigningKeys, passphrase: str | None, *, name: str = KEY_FILE
) -> None:
    """Write the keys (0600, flushed, replacing the file whole)."""
    write_private(directory / name, json.dumps(keys.sealed(passphrase), indent=1, sort_keys=True))


def adopt_staged(directory: Path, on_server: str | None, passphrase: str | None) -> None:
    """Finish or forget a reset a crash interrupted: staged keys the homeserver holds
    become the bot's keys; others were never uploaded and are removed."""
    staged = directory / STAGED_FILE
    if not staged.exists():
        return
    try:
        keys = load_keys(directory, passphrase, name=STAGED_FILE)
    except CryptoStoreError as exc:
        log.warning("matrix: dropping unusable staged cross-signing keys: %s", exc)
        keys = None
    if keys is not None and keys.public("master") == on_server:
        os.replace(staged, key_path(directory))
        log.info("matrix: the cross-signing keys uploaded before a restart are now the bot's")
    else:
        staged.unlink(missing_ok=True)


async def _replace_keys(
    client: nio.AsyncClient, directory: Path, passphrase: str | None, password: str | None
) -> CrossSigningKeys:
    """New keys, uploaded, then kept: the old file stays until the homeserver took them."""
    keys = CrossSigningKeys.generate(client.user_id)
    save_keys(directory, keys, passphrase, name=STAGED_FILE)
    try:
        await upload(client, keys, password)
    except BaseException:
        (directory / STAGED_FILE).unlink(missing_ok=True)
        raise
    os.replace(directory / STAGED_FILE, key_path(directory))
    return keys


def _sealed(directory: Path) -> bool:
    try:
        return "sealed" in json.loads(key_path(directory).read_text(encoding="utf8"))
    except (OSError, ValueError, TypeError):
        return False


def public_master(directory: Path) -> str | None:
    """The master public key recorded in the key file (readable without the passphrase)."""
    try:
        body = json.loads(key_path(directory).read_text(encoding="utf8"))
        master = body["public"]["master"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return master if isinstance(master, str) else None


def _unusable(path: Path, why: str) -> str:
    return (
        f"the bot's cross-signing keys in {path} are unusable: {why}. Set the passphrase "
        "they were sealed with (connectors.matrix.store_passphrase_env), or move the file "
        "aside and run `fleetwarden matrix cross-sign --reset` (operators then see that "
        "the bot's identity changed)."
    )


async def own_keys(client: nio.AsyncClient) -> tuple[UserIdentity | None, JsonDict | None]:
    """The bot's identity and its device's keys object, as the homeserver has them."""
    body: JsonDict = {"device_keys": {client.user_id: []}}
    answer = await wire.raw_json(client, "POST", "/_matrix/client/v3/keys/query", body)
    if not isinstance(answer, dict):
        return None, None
    device = answer.get("device_keys", {}).get(client.user_id, {}).get(client.device_id)
    return identities(answer).get(client.user_id), device if isinstance(device, dict) else None


async def _post(client: nio.AsyncClient, path: str, body: JsonDict) -> tuple[int, Any]:
    """A JSON POST that returns a 401 (interactive auth asked for) instead of raising."""
    return await wire.raw_answer(client, "POST", path, body)


async def upload(client: nio.AsyncClient, keys: CrossSigningKeys, password: str | None) -> None:
    """Upload the public keys; answer the homeserver's interactive auth with ``password``."""
    body = keys.upload_body()
    status, answer = await _post(client, _UPLOAD, body)
    if status == 401 and isinstance(answer, dict) and "flows" in answer:
        if password is None:
            raise ConnectorError(
                "the homeserver wants the bot's password to replace its cross-signing keys"
            )
        body["auth"] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": client.user_id},
            "password": password,
            "session": answer.get("session"),
        }
        status, answer = await _post(client, _UPLOAD, body)
    if status >= 400:
        code = answer.get("errcode", "?") if isinstance(answer, dict) else "?"
        message = answer.get("error", "") if isinstance(answer, dict) else ""
        raise ConnectorError(f"upload cross-signing keys: {code} {message} (HTTP {status})")


async def _upload_signatures(client: nio.AsyncClient, signed: dict[str, JsonDict]) -> None:
    answer = await wire.raw_json(client, "POST", _SIGNATURES, signed)
    failures = answer.get("failures") if isinstance(answer, dict) else None
    if failures:
        raise ConnectorError(f"upload signatures: the homeserver refused them: {failures}")


async def sign_device(client: nio.AsyncClient, keys: CrossSigningKeys, device: JsonDict) -> bool:
    """Sign the bot's device with the self-signing key (and, when the device's Olm account
    is loaded, the master key with the device) unless already done. True if uploaded."""
    user = client.user_id
    mine = UserIdentity(user, keys.key_object("master"), keys.key_object("self_signing"))
    uploads: dict[str, JsonDict] = {}
    if not mine.signs_device(device):
        bare = {k: v for k, v in device.items() if k != "unsigned"}
        uploads[str(client.device_id)] = keys.sign_device(bare)
    olm = client.olm
    if olm is not None:
        ed25519 = str(olm.account.identity_keys["ed25519"])
        master = keys.key_object("master")
        if not verified(master, user, ed25519, key_name=str(client.device_id)):
            signature = olm.sign_json(master)
            master["signatures"] = {user: {f"ed25519:{client.device_id}": signature}}
            uploads[keys.public("master")] = master
    if not uploads:
        return False
    await _upload_signatures(client, {user: uploads})
    return True


async def set_up(
    client: nio.AsyncClient,
    directory: Path,
    *,
    passphrase: str | None,
    password: str | None,
    reset: bool = False,
) -> tuple[Outcome, CrossSigningKeys | None]:
    """Make the homeserver hold the bot's cross-signing keys and its device signed by them.
    Raises :class:`CryptoStoreError` for an unusable key file, ConnectorError on the wire."""
    server, device = await own_keys(client)
    on_server = server.master_key if server is not None else None
    adopt_staged(directory, on_server, passphrase)
    keys = load_keys(directory, passphrase)
    if keys is not None and keys.user_id != client.user_id:
        raise CryptoStoreError(
            _unusable(
                key_path(directory),
                f"they are {keys.user_id}'s, and the bot signs in as {client.user_id}",
            )
        )
    if keys is not None and passphrase is not None and not _sealed(directory):
        save_keys(directory, keys, passphrase)  # a passphrase set after the keys were made
    if keys is not None and not reset and on_server == keys.public("master"):
        outcome = Outcome.READY
    elif keys is not None and not reset and on_server is None:
        await upload(client, keys, password)
        outcome = Outcome.MADE
    elif on_server is None:
        keys = await _replace_keys(client, directory, passphrase, password)
        outcome = Outcome.MADE
    elif password is None:
        log.error(
            "matrix: the homeserver holds a master key for %s that is not in %s; the bot's "
            "device stays unsigned until `fleetwarden matrix cross-sign` is run",
            client.user_id,
            key_path(directory),
        )
        return Outcome.NEEDS_RESET, None
    else:
        keys = await _replace_keys(client, directory, passphrase, password)
        outcome = Outcome.RESET
    if device is not None:
        await sign_device(client, keys, device)
    log.info("matrix: %s; master key %s", outcome.value, keys.public("master"))
    return outcome, keys


class BotIdentity:
    """The bot's cross-signing keys as the running connector sees them.

    ``keys`` is None until :func:`set_up` ran, or when the homeserver's master key is not
    the bot's (an access-token login waiting for ``fleetwarden matrix cross-sign``).
    """

    def __init__(self, client: nio.AsyncClient, directory: Path, passphrase: str | None) -> None:
        self._client = client
        self._directory = directory
        self._passphrase = passphrase
        self._keys: CrossSigningKeys | None = None
        self._mtime: int | None = None
        self._announced: str | None = None  # the master key operators last heard of

    def adopt(self, keys: CrossSigningKeys | None) -> None:
        self._keys = keys
        self._announced = keys.public("master") if keys is not None else None
        with contextlib.suppress(OSError):
            self._mtime = key_path(self._directory).stat().st_mtime_ns

    @property
    def keys(self) -> CrossSigningKeys | None:
        """The keys, read again when the key file changed since (the CLI reset them)."""
        try:
            mtime = key_path(self._directory).stat().st_mtime_ns
        except OSError:
            return self._keys
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self._keys = load_keys(self._directory, self._passphrase)
            except CryptoStoreError as exc:
                log.error("matrix: %s; keeping the keys read before", exc)
        return self._keys

    def changed(self) -> str | None:
        """The new master key when the key file now holds another identity than the one
        operators last heard of (``fleetwarden matrix cross-sign --reset`` while the bot
        runs), once; else None."""
        keys = self.keys
        master = keys.public("master") if keys is not None else None
        if master is None or master == self._announced:
            return None
        self._announced = master
        return master

    def user_signing_public(self) -> str | None:
        keys = self.keys
        return keys.public("user_signing") if keys is not None else None

    async def sign_user(self, identity: UserIdentity) -> None:
        """Sign ``identity``'s master key with the bot's user-signing key and upload it, as
        Element does when its user verified someone. Raises ConnectorError."""
        keys = self.keys
        if keys is None:
            raise ConnectorError(
                "the bot has no cross-signing keys yet: run `fleetwarden matrix cross-sign`"
            )
        bare = {k: v for k, v in identity.master.items() if k != "unsigned"}
        signed = keys.sign_user(bare)
        await _upload_signatures(self._client, {identity.user_id: {identity.master_key: signed}})
        olm = self._client.olm
        if olm is not None:  # the homeserver tells only the signer's devices: ask again
            olm.users_for_key_query.add(identity.user_id)
