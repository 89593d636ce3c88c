"""The bot's end-to-end encryption device: its crypto store on disk, and the check that it is
the device the homeserver knows.

matrix-nio's E2EE (``matrix-nio[e2e]``: vodozemac, the Rust Olm/Megolm implementation,
under nio's own ``SqliteStore``) keeps the device's identity keys, Olm and Megolm sessions
and trust decisions in one SQLite file, ``<state_dir>/matrix/crypto/<user>_<device>.db``:
0700 directory, 0600 file, made so before nio opens it. Nothing from it is ever logged.

Opening it ends in one of four ways (:class:`Opened`): the store is this device's, a new
device starts a new store, the store was **lost** (the server holds keys for this device
but the store is gone or empty: the bot must log in as a new device), or it cannot be used
(unreadable, another passphrase, keys that are not the server's): a :class:`CryptoStoreError`
that says how to reset the device. Never a silent fallback to unencrypted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nio
from nio.store import SqliteStore

from connectors.errors import ConnectorAuthError, ConnectorError, ConnectorSetupError
from connectors.matrix import wire
from connectors.matrix.config import MatrixConfig
from connectors.matrix.encryption.signing import grouped

log = logging.getLogger(__name__)

_DEFAULT_PICKLE_KEY = "DEFAULT_KEY"  # nio's own default: the store is then protected by mode 600


class CryptoStoreError(ConnectorSetupError):
    """The crypto store cannot be used; the connector must not start (fatal, like a bad login)."""


class Opened(enum.Enum):
    KNOWN = "this device's store"
    NEW = "a new device"
    LOST = "lost"


def store_dir(state_dir: Path) -> Path:
    return state_dir / "matrix" / "crypto"


def client_config(config: MatrixConfig, environ: Mapping[str, str]) -> nio.AsyncClientConfig:
    """nio's settings: no retries inside nio (the sync loop and the send path own retrying),
    and E2EE off until :func:`open_store` turns it on for a logged-in device."""
    passphrase = _DEFAULT_PICKLE_KEY
    if config.store_passphrase_env is not None:
        passphrase = environ.get(config.store_passphrase_env, "")
        if not passphrase:
            raise ConnectorAuthError(
                f"environment variable {config.store_passphrase_env} "
                "(connectors.matrix.store_passphrase_env) is not set"
            )
    return nio.AsyncClientConfig(
        max_limit_exceeded=0,
        max_timeouts=0,
        request_timeout=config.sync_timeout_seconds + 30,
        encryption_enabled=False,
        store=SqliteStore,
        store_sync_tokens=False,  # the ledger keeps the sync token
        pickle_key=passphrase,
    )


def close_up(directory: Path) -> None:
    """Make the store directory 0700 and every file in it 0600 (older state too)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    os.chmod(directory.parent, 0o700)
    for path in directory.iterdir():
        if path.is_file():
            os.chmod(path, 0o600)


def store_file(directory: Path, user_id: str, device_id: str) -> Path:
    return directory / f"{user_id}_{device_id}.db"


async def open_store(client: nio.AsyncClient, directory: Path) -> Opened:
    """Load the logged-in device's crypto store from ``directory`` and check it against the
    homeserver. Raises :class:`CryptoStoreError` when it cannot be used."""
    close_up(directory)
    path = store_file(directory, client.user_id, str(client.device_id))
    existed = path.exists() and path.stat().st_size > 0
    if not existed:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    client.store_path = str(directory)
    client.config = dataclasses.replace(client.config, encryption_enabled=True)
    try:
        client.load_store()
        olm = client.olm
        if olm is None:
            raise RuntimeError("nio made no Olm machine")
        ours = str(olm.account.identity_keys["ed25519"])
        shared = bool(olm.account.shared)
    except CryptoStoreError:
        raise
    except Exception as exc:  # peewee, vodozemac: a damaged file or another passphrase
        _forget_store(client)
        why = f"it cannot be read ({type(exc).__name__}: {exc})"
        raise CryptoStoreError(unusable(path, why)) from exc
    os.chmod(path, 0o600)
    on_server = await _server_key(client)
    if on_server is None:
        return Opened.NEW if not shared else Opened.KNOWN
    if not shared:  # the server knows this device's keys, and this store never made them
        _forget_store(client)
        if not existed:
            path.unlink(missing_ok=True)  # the empty store just made for the lost device
        return Opened.LOST
    if on_server != ours:
        _forget_store(client)
        raise CryptoStoreError(
            unusable(path, "its keys are not the ones the homeserver has for this device")
        )
    return Opened.KNOWN


def fingerprint(client: nio.AsyncClient) -> str:
    """The device's ed25519 key in Element's grouping ("abcd efgh …"), to verify it by."""
    olm = client.olm
    if olm is None:
        return ""
    return grouped(str(olm.account.identity_keys["ed25519"]))


def unusable(path: Path, why: str) -> str:
    return (
        f"the Matrix crypto store {path} is unusable: {why}. Fleetwarden will not fall back "
        f"to unencrypted. To reset the bot's device, move {path.parent} aside and start "
        "again: with password_env it logs in as a new device and says so in each room; with "
        "access_token_env, make a new access token (a new device) first. Operators then "
        "verify the new device (docs/matrix.md)."
    )


def _forget_store(client: nio.AsyncClient) -> None:
    """Leave the client with no store loaded (nio keeps the database open otherwise)."""
    store = client.store
    database = getattr(store, "database", None)
    with contextlib.suppress(Exception):
        if database is not None:
            database.close()
    client.store = None
    client.olm = None
    client.config = dataclasses.replace(client.config, encryption_enabled=False)


async def _server_key(client: nio.AsyncClient) -> str | None:
    """The ed25519 key the homeserver holds for the bot's own device, if any.

    Asked with a raw ``/keys/query`` on nio's session: nio's own ``keys_query`` asks only
    for the users it tracks, and would fold the answer into the store being checked.
    """
    body: dict[str, Any] = {"device_keys": {client.user_id: [client.device_id]}}
    response = await wire.raw_json(client, "POST", "/_matrix/client/v3/keys/query", body)
    if not isinstance(response, dict):
        return None
    device = response.get("device_keys", {}).get(client.user_id, {}).get(client.device_id)
    if not isinstance(device, dict):
        return None
    key = device.get("keys", {}).get(f"ed25519:{client.device_id}")
    return key if isinstance(key, str) else None


def raise_if_unusable(exc: BaseException) -> None:
    """Crypto failures while running are bugs or a damaged store, never a reason to send
    in clear: re-raise them as a ConnectorError the caller reports."""
    raise ConnectorError(f"end-to-end encryption failed: {type(exc).__name__}: {exc}") from exc
