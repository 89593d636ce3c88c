"""``fleetwarden matrix cross-sign``: make, upload or reset the bot's cross-signing keys and
sign its device from a shell — what the bot does at start, for when it cannot (an
access-token login cannot answer the homeserver's password prompt). Also the cross-signing
lines of ``fleetwarden matrix device``.

It uses the bot's own login (the access token in ``access_token_env``, else the session the
bot saved) and asks for the bot's password only to authorise replacing keys. Safe while the
bot runs: the bot reads the key file again when it changed.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from connectors.errors import ConnectorError
from connectors.matrix.config import MatrixConfig


def configure(
    matrix_sub: argparse._SubParsersAction[argparse.ArgumentParser], config_help: str
) -> None:
    sign = matrix_sub.add_parser(
        "cross-sign",
        help="make the bot's cross-signing keys and sign its device (asks for its password)",
        description=(
            "Make the bot's cross-signing keys (or check those it has), upload them and sign "
            "its device, so that Element shows the bot's device as verified by its owner. "
            "Uses the bot's login; the password authorises replacing keys already on the "
            "homeserver. Safe while the bot runs."
        ),
    )
    sign.add_argument("--config", type=Path, required=True, help=config_help)
    sign.add_argument(
        "--reset",
        action="store_true",
        help="make new keys even if the bot has some (operators see an identity change)",
    )
    sign.add_argument(
        "--password-env",
        metavar="NAME",
        help="read the bot's password from this environment variable instead of asking",
    )


def run(
    config: MatrixConfig,
    state_dir: Path,
    environ: Mapping[str, str],
    *,
    reset: bool,
    password_env: str | None,
    ask: Callable[[str], str] = getpass.getpass,
) -> str:
    """Do it; the lines to print. Raises ValueError or ConnectorError with what to fix."""
    password = _password(config, environ, password_env, ask)
    return asyncio.run(_cross_sign(config, state_dir, environ, password, reset))


def status(config: MatrixConfig, state_dir: Path, environ: Mapping[str, str]) -> str:
    """The bot's master key and whether the homeserver has its device signed (best effort:
    this needs the homeserver)."""
    from connectors.matrix.encryption import cross_signing, crypto
    from connectors.matrix.encryption.signing import grouped

    master = cross_signing.public_master(crypto.store_dir(state_dir))
    lines = [f"master key:  {grouped(master) if master else 'none yet'}"]
    try:
        signed = asyncio.run(_device_signed(config, state_dir, environ))
    except (ValueError, ConnectorError, OSError, TimeoutError) as exc:
        lines.append(f"cross-signed: unknown ({str(exc) or type(exc).__name__})")
    else:
        lines.append(
            "cross-signed: yes (its device is signed by its self-signing key)"
            if signed
            else "cross-signed: no — run `fleetwarden matrix cross-sign --config …`"
        )
    return "\n".join(lines)


def _password(
    config: MatrixConfig,
    environ: Mapping[str, str],
    password_env: str | None,
    ask: Callable[[str], str],
) -> str:
    name = password_env or config.password_env
    if name is not None:
        value = environ.get(name, "")
        if value:
            return value
        if password_env is not None:
            raise ValueError(f"environment variable {password_env} (--password-env) is not set")
    if not sys.stdin.isatty():
        raise ValueError("no terminal to ask for the bot's password: use --password-env NAME")
    value = ask(f"Password of {config.user_id}: ")
    if not value:
        raise ValueError("no password given")
    return value


async def _logged_in(config: MatrixConfig, state_dir: Path, environ: Mapping[str, str]) -> Any:
    """A nio client logged in as the bot's device (no crypto store), to close after use."""
    import nio

    from connectors.matrix import session

    token = environ.get(config.access_token_env or "", "")
    if not token:
        try:
            saved = json.loads(session.session_path(state_dir).read_text(encoding="utf8"))
            token = str(saved["access_token"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"no login of the bot to use: no session in {state_dir}; start `fleetwarden "
                "run` once first"
            ) from exc
    client = nio.AsyncClient(config.homeserver, user=config.user_id)
    client.access_token = token
    try:
        who = await client.whoami()
    except Exception:
        await client.close()
        raise
    if not isinstance(who, nio.WhoamiResponse) or who.user_id != config.user_id:
        await client.close()
        raise ValueError(f"the homeserver rejected the bot's login for {config.user_id}")
    client.restore_login(config.user_id, str(who.device_id), token)
    return client


async def _cross_sign(
    config: MatrixConfig, state_dir: Path, environ: Mapping[str, str], password: str, reset: bool
) -> str:
    from connectors.matrix.encryption import cross_signing, crypto
    from connectors.matrix.encryption.signing import grouped

    directory = crypto.store_dir(state_dir)
    crypto.close_up(directory)
    passphrase = _passphrase(config, environ)
    client = await _logged_in(config, state_dir, environ)
    try:
        outcome, keys = await cross_signing.set_up(
            client, directory, passphrase=passphrase, password=password, reset=reset
        )
    finally:
        await client.close()
    if keys is None:  # only without a password, which this command always has
        raise ConnectorError(outcome.value)
    said = (
        f"{outcome.value}.\n"
        f"master key:  {grouped(keys.public('master'))}\n"
        f"device {client.device_id} is signed by the bot's self-signing key."
    )
    if outcome is cross_signing.Outcome.RESET:
        said += (
            "\nOperators' clients now show that the bot's identity changed; those who "
            "verified it verify it again."
        )
    return said


async def _device_signed(config: MatrixConfig, state_dir: Path, environ: Mapping[str, str]) -> bool:
    from connectors.matrix.encryption import cross_signing

    client = await _logged_in(config, state_dir, environ)
    try:
        identity, device = await cross_signing.own_keys(client)
    finally:
        await client.close()
    return identity is not None and device is not None and identity.signs_device(device)


def _passphrase(config: MatrixConfig, environ: Mapping[str, str]) -> str | None:
    name = config.store_passphrase_env
    if name is None:
        return None
    value = environ.get(name, "")
    if not value:
        raise ValueError(f"environment variable {name} (store_passphrase_env) is not set")
    return value
