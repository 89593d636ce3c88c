"""Logging the bot in: an access token, or a password with the session kept for reuse.

Token: ``whoami`` tells the device id, then ``restore_login``. Password: reuse
``<state_dir>/matrix/session.json`` when ``whoami`` still accepts its token, else log in
and save the new session (mode 0600). Secrets are never logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nio

from connectors.errors import ConnectorAuthError, ConnectorError
from connectors.matrix import wire
from connectors.matrix.config import MatrixConfig
from connectors.matrix.messages.payloads import SessionFile

log = logging.getLogger(__name__)


def session_path(state_dir: Path) -> Path:
    return state_dir / "matrix" / "session.json"


def _secret(environ: Mapping[str, str], name: str, setting: str) -> str:
    value = environ.get(name)
    if not value:
        raise ConnectorAuthError(
            f"environment variable {name} (connectors.matrix.{setting}) is not set"
        )
    return value


async def log_in(
    client: nio.AsyncClient, config: MatrixConfig, environ: Mapping[str, str], state_dir: Path
) -> None:
    """Make ``client`` logged in as ``config.user_id``, or raise ConnectorAuthError."""
    if config.access_token_env is not None:
        token = _secret(environ, config.access_token_env, "access_token_env")
        device_id = await _whoami(client, config, token)
        if device_id is None:
            raise ConnectorAuthError(
                f"the homeserver rejected the access token in {config.access_token_env} "
                f"for {config.user_id}"
            )
        client.restore_login(config.user_id, device_id, token)
        log.info(
            "matrix: logged in as %s (device %s) with an access token", config.user_id, device_id
        )
        return
    if config.password_env is None:  # MatrixConfig requires one of the two
        raise ConnectorAuthError("set connectors.matrix.access_token_env or password_env")
    password = _secret(environ, config.password_env, "password_env")
    path = session_path(state_dir)
    saved = _load(path, config)
    if saved is not None:
        device_id = await _whoami(client, config, saved["access_token"])
        if device_id is not None:
            client.restore_login(config.user_id, device_id, saved["access_token"])
            log.info("matrix: reusing the session of device %s from %s", device_id, path)
            return
        log.info("matrix: the saved session in %s is no longer valid; logging in again", path)
        client.device_id = saved["device_id"]  # keep the device: no new one per restart
    client.access_token = ""
    response = await _login(client, config, password)
    _save(
        path,
        {
            "homeserver": config.homeserver,
            "user_id": str(response.user_id),
            "device_id": str(response.device_id),
            "access_token": str(response.access_token),
        },
    )
    log.info(
        "matrix: logged in as %s with a password (device %s); session saved in %s",
        config.user_id,
        response.device_id,
        path,
    )


async def log_in_as_new_device(
    client: nio.AsyncClient, config: MatrixConfig, environ: Mapping[str, str], state_dir: Path
) -> None:
    """Log in again with the password, as a new device (the old one's keys are lost).

    Raises ConnectorAuthError with an access token: it is bound to its device.
    """
    if config.password_env is None:
        raise ConnectorAuthError(
            f"the crypto store of device {client.device_id} is lost and the access token in "
            f"{config.access_token_env} is bound to that device: make a new access token (a "
            "new device) for the bot, or use password_env"
        )
    password = _secret(environ, config.password_env, "password_env")
    lost = client.device_id
    client.device_id = None
    client.access_token = ""
    response = await _login(client, config, password)
    _save(
        session_path(state_dir),
        {
            "homeserver": config.homeserver,
            "user_id": str(response.user_id),
            "device_id": str(response.device_id),
            "access_token": str(response.access_token),
        },
    )
    log.warning(
        "matrix: the crypto store of device %s was lost; logged in as new device %s",
        lost,
        response.device_id,
    )


async def _login(client: nio.AsyncClient, config: MatrixConfig, password: str) -> Any:
    try:
        response = await client.login(password, device_name=config.device_name)
    except wire.TRANSIENT_EXCEPTIONS as exc:
        raise ConnectorError(
            f"log in as {config.user_id}: cannot reach the homeserver: {exc!r}"
        ) from exc
    if isinstance(response, nio.LoginResponse):
        if response.user_id != config.user_id:
            raise ConnectorAuthError(
                f"logged in as {response.user_id}, but connectors.matrix.user_id is "
                f"{config.user_id}"
            )
        return response
    if getattr(response, "status_code", None) in ("M_FORBIDDEN", "M_USER_DEACTIVATED") or (
        wire.http_status(response) in (401, 403)
    ):
        raise ConnectorAuthError(
            f"the homeserver rejected the password in {config.password_env} for "
            f"{config.user_id}: {wire.describe(response)}"
        )
    raise wire.error_for(response, f"log in as {config.user_id}")


async def _whoami(client: nio.AsyncClient, config: MatrixConfig, token: str) -> str | None:
    """The device id ``token`` belongs to; None if the server rejects the token.

    Raises ConnectorAuthError when the token is someone else's, ConnectorError when
    the server cannot be asked.
    """
    client.access_token = token
    try:
        response = await client.whoami()
    except wire.TRANSIENT_EXCEPTIONS as exc:
        raise ConnectorError(
            f"whoami for {config.user_id}: cannot reach the homeserver: {exc!r}"
        ) from exc
    if not isinstance(response, nio.WhoamiResponse):
        if wire.is_auth_failure(response):
            client.access_token = ""
            return None
        raise wire.error_for(response, f"whoami for {config.user_id}")
    if response.user_id != config.user_id:
        raise ConnectorAuthError(
            f"the access token belongs to {response.user_id}, but connectors.matrix.user_id "
            f"is {config.user_id}"
        )
    return str(response.device_id or "")


def _load(path: Path, config: MatrixConfig) -> SessionFile | None:
    """The saved session for this homeserver and user, if there is a usable one."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("matrix: ignoring the unreadable session file %s: %s", path, exc)
        return None
    fields = ("homeserver", "user_id", "device_id", "access_token")
    if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in fields):
        log.warning("matrix: ignoring the malformed session file %s", path)
        return None
    if data["homeserver"] != config.homeserver or data["user_id"] != config.user_id:
        log.info("matrix: the session in %s is for another account; logging in again", path)
        return None
    return SessionFile(
        homeserver=data["homeserver"],
        user_id=data["user_id"],
        device_id=data["device_id"],
        access_token=data["access_token"],
    )


def _save(path: Path, session: SessionFile) -> None:
    """Write the session atomically, readable by the owner only (it holds a token)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf8") as file:
        json.dump(session, file)
    os.replace(temporary, path)
