"""``fleetwarden matrix device`` and ``fleetwarden matrix trust``: the bot's device, to verify
it by, and an admin's verification of an operator — their identity (master key) or one of
their devices (for ``trust: verified``).

Both work offline on the state dir: ``device`` reads the bot's identity key from its crypto
store; ``trust`` records a device and its key in ``trust.json``, which the running bot
reads again before its next trust decision. nio is imported where used: the CLI imports
this module on every start.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from connectors.matrix.config import MatrixConfig

_KEY = re.compile(r"[A-Za-z0-9+/]{43}")
_USER = re.compile(r"@[^:\s]+:\S+")
_DEVICE = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def configure(
    matrix_sub: argparse._SubParsersAction[argparse.ArgumentParser], config_help: str
) -> None:
    device = matrix_sub.add_parser(
        "device", help="show the bot's device id and session key, to verify it in Element"
    )
    device.add_argument("--config", type=Path, required=True, help=config_help)
    trust = matrix_sub.add_parser(
        "trust",
        help="verify an operator (USER MASTER_KEY) or one device (USER DEVICE KEY); compare first",
        description=(
            "Verify an operator for `trust: verified`: `trust USER MASTER_KEY` verifies their "
            "identity (all the devices they cross-signed follow), `trust USER DEVICE KEY` one "
            "device of an operator without cross-signing. Compare the key with them first."
        ),
    )
    trust.add_argument("user", help="the operator, e.g. @alice:example.org")
    trust.add_argument(
        "device", help="their master key (spaces allowed), or a device id as Element shows it"
    )
    trust.add_argument(
        "key", nargs="?", help="with a device id: its session key (ed25519); spaces allowed"
    )
    trust.add_argument("--config", type=Path, required=True, help=config_help)


def describe_device(config: MatrixConfig, state_dir: Path, pickle_key: str) -> str:
    """The bot's device id and ed25519 key in Element's grouping, from the crypto store."""
    from nio.store import SqliteStore

    from connectors.matrix.encryption import crypto

    directory = crypto.store_dir(state_dir)
    device_id = _device_id(config, state_dir, directory)
    path = crypto.store_file(directory, config.user_id, device_id)
    if not path.exists():
        raise ValueError(
            f"no crypto store for device {device_id} in {directory}: start `fleetwarden run` once"
        )
    store = SqliteStore(config.user_id, device_id, str(directory), pickle_key, "")
    try:
        account = store.load_account()
    finally:
        store.database.close()
    if account is None:
        raise ValueError(f"the crypto store {path} holds no device keys yet")
    from connectors.matrix.encryption.signing import grouped

    key = grouped(str(account.identity_keys["ed25519"]))
    return (
        f"user:        {config.user_id}\n"
        f"device:      {device_id}\n"
        f"session key: {key}\n"
        "Compare it with the session Element shows for the bot (its profile → Sessions)."
    )


def record_trust(state_dir: Path, user: str, device: str, key: str | None) -> str:
    """Record ``user``'s ``device`` as verified with ``key``; with no ``key``, ``device`` is
    ``user``'s master key and their identity is recorded as verified."""
    if not _USER.fullmatch(user):
        raise ValueError(f"expected a Matrix user id like @alice:example.org, got {user!r}")
    if key is None:
        return _record_identity(state_dir, user, device)
    bare = key.replace(" ", "")
    if not _DEVICE.fullmatch(device):
        raise ValueError(f"expected a device id like ABCDEFGHIJ, got {device!r}")
    if not _KEY.fullmatch(bare):
        raise ValueError(
            "expected the device's ed25519 session key: 43 characters of unpadded base64 "
            "(Element shows it in groups of four)"
        )
    from connectors.matrix.encryption import crypto
    from connectors.matrix.encryption.trust import TrustFile

    directory = crypto.store_dir(state_dir)
    crypto.close_up(directory)
    TrustFile(directory / "trust.json").put("verified", user, device, bare)
    return f"{user}'s device {device} is verified: it gets the bot's room keys from now on."


def _record_identity(state_dir: Path, user: str, master: str) -> str:
    bare = master.replace(" ", "")
    if not _KEY.fullmatch(bare):
        raise ValueError(
            f"expected {user}'s master key: 43 characters of unpadded base64 (Element shows "
            "it in groups of four), or a device id followed by that device's session key"
        )
    from connectors.matrix.encryption import crypto
    from connectors.matrix.encryption.trust import TrustFile

    directory = crypto.store_dir(state_dir)
    crypto.close_up(directory)
    TrustFile(directory / "trust.json").put("identities", user, "master", bare)
    return (
        f"{user}'s identity is verified: every device they sign gets the bot's room keys "
        "from now on."
    )


def _device_id(config: MatrixConfig, state_dir: Path, directory: Path) -> str:
    from connectors.matrix import session

    try:
        saved = json.loads(session.session_path(state_dir).read_text(encoding="utf8"))
        if isinstance(saved, dict) and isinstance(saved.get("device_id"), str):
            return str(saved["device_id"])
    except (OSError, ValueError):
        pass
    stores = sorted(directory.glob(f"{config.user_id}_*.db")) if directory.is_dir() else []
    if len(stores) == 1:
        return stores[0].name[len(config.user_id) + 1 : -len(".db")]
    raise ValueError(
        f"cannot tell the bot's device: no session in {state_dir} and {len(stores)} stores"
    )
