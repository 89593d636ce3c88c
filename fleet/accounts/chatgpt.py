"""ChatGPT logins for Codex: the ``auth.json`` Fleetwarden keeps for each
``chatgpt_subscription`` account, and refreshing its access token in one place.

A login is Codex's own file (``auth_mode: chatgpt``, ``tokens`` with an ``id_token``, an
``access_token``, a ``refresh_token`` and the ``account_id``), made once by
``fleetwarden accounts login NAME`` and kept at ``<state_dir>/accounts/NAME/auth.json``,
mode 0600, always replaced whole (:func:`~fleet.private_files.write_private`).

**Refresh happens here and nowhere else.** A refresh rotates the refresh token, and the
old one is then refused — presenting it again revokes the whole login
(``refresh_token_reused``). So agents never hold a refresh token (they get placeholders),
and :class:`LoginKeeper` refreshes under a lock: of many requests that found the same
access token stale, the first refreshes and the rest take its result.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp

from fleet.accounts.model import AccountError
from fleet.private_files import open_private, write_private

log = logging.getLogger(__name__)

# Codex's own OAuth client: a refresh must name the client the login was made with.
CLIENT_ID: Final = "app_EMoamEEZ73f0CkXaXp7hrann"
REFRESH_AHEAD: Final = timedelta(minutes=5)  # refresh a token this close to its expiry
_AUTH_CLAIM: Final = "https://api.openai.com/auth"
_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)


class LoginRevoked(AccountError):
    """The provider refused to refresh the login: it must be made again."""


@dataclass(frozen=True, slots=True)
class ChatGptLogin:
    """The parts of a Codex ``auth.json`` the proxy uses; ``document`` is the whole file,
    kept so a rewrite loses nothing Codex put there."""

    access_token: str
    refresh_token: str
    id_token: str
    account_id: str
    document: Mapping[str, Any]

    @property
    def expires_at(self) -> datetime | None:
        """When the access token expires, from its own ``exp`` claim."""
        exp = jwt_claims(self.access_token).get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            return datetime.fromtimestamp(exp, UTC)
        return None

    def stale(self, now: datetime) -> bool:
        expires = self.expires_at
        return expires is not None and expires - REFRESH_AHEAD <= now

    @property
    def plan(self) -> str | None:
        claim = jwt_claims(self.id_token).get(_AUTH_CLAIM)
        plan = claim.get("chatgpt_plan_type") if isinstance(claim, dict) else None
        return plan if isinstance(plan, str) else None


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (we only read our own login's expiry and plan)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def parse_login(text: str) -> ChatGptLogin:
    """A Codex ``auth.json``'s text as a login; :class:`AccountError` saying what is wrong
    when it is not a ChatGPT login (never quoting a token)."""
    try:
        document = json.loads(text)
    except ValueError:
        raise AccountError("is not JSON: it should be Codex's auth.json") from None
    if not isinstance(document, dict):
        raise AccountError("is not a JSON object: it should be Codex's auth.json")
    tokens = document.get("tokens")
    mode = document.get("auth_mode")
    if not isinstance(tokens, dict):
        kind = "an API-key login" if document.get("OPENAI_API_KEY") else "no login"
        raise AccountError(
            f"holds {kind}, not a ChatGPT login: log in with `codex login` (ChatGPT, not "
            "an API key)"
        )
    if mode not in (None, "chatgpt", "chatgptAuthTokens"):
        raise AccountError(f"is a {mode!r} login, not a ChatGPT login")
    fields = {}
    for name in ("access_token", "refresh_token", "id_token"):
        value = tokens.get(name)
        if not isinstance(value, str) or not value:
            raise AccountError(f"has no tokens.{name}: it is not a complete ChatGPT login")
        fields[name] = value
    account_id = tokens.get("account_id")
    if not isinstance(account_id, str) or not account_id:
        claim = jwt_claims(fields["id_token"]).get(_AUTH_CLAIM)
        account_id = claim.get("chatgpt_account_id") if isinstance(claim, dict) else None
    if not isinstance(account_id, str) or not account_id:
        raise AccountError("names no ChatGPT account (tokens.account_id)")
    return ChatGptLogin(
        fields["access_token"],
        fields["refresh_token"],
        fields["id_token"],
        account_id,
        document,
    )


def read_login(path: Path) -> ChatGptLogin:
    """The login at ``path``; :class:`AccountError` naming the file and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AccountError(f"no ChatGPT login at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AccountError(f"cannot read the ChatGPT login {path}: {exc}") from None
    try:
        return parse_login(text)
    except AccountError as exc:
        raise AccountError(f"{path} {exc}") from None


def login_problem(path: Path) -> str | None:
    """What is wrong with the login at ``path`` (for the config check), or ``None``."""
    account = path.parent.name
    try:
        read_login(path)
    except AccountError as exc:
        return (
            f"{exc}; make it with `fleetwarden accounts login {account}` (or copy a Codex "
            f"auth.json in with `fleetwarden accounts login {account} --from PATH`)"
        )
    return None


def save_login(path: Path, login: ChatGptLogin) -> None:
    write_private(path, json.dumps(login.document, indent=2))


def keep_login(path: Path, login: ChatGptLogin) -> None:
    """Save ``login`` under the lock a refresh holds (``accounts login`` beside a running
    Fleetwarden): never interleaved with a refresh of the old one."""
    lock = _lock_file(path)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            save_login(path, login)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _renewed(login: ChatGptLogin, answer: Mapping[str, Any], now: datetime) -> ChatGptLogin:
    tokens = dict(login.document.get("tokens") or {})
    for name in ("access_token", "refresh_token", "id_token"):
        value = answer.get(name)
        if isinstance(value, str) and value:
            tokens[name] = value
    document = {
        **login.document,
        "tokens": tokens,
        "last_refresh": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    return parse_login(json.dumps(document))


class LoginKeeper:
    """One ChatGPT account's login: read at start, refreshed here only, under a lock (an
    ``asyncio.Lock`` in this process, ``flock`` on a file beside the login for another
    Fleetwarden command such as ``accounts check``)."""

    def __init__(self, name: str, path: Path, token_url: str) -> None:
        self.name = name
        self.path = path
        self.token_url = token_url
        self._login: ChatGptLogin | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def load(self) -> ChatGptLogin:
        self._login = read_login(self.path)
        return self._login

    @property
    def login(self) -> ChatGptLogin | None:
        return self._login

    async def refresh(
        self, session: aiohttp.ClientSession, *, stale: str | None, now: datetime
    ) -> ChatGptLogin:
        """A fresh login. ``stale`` is the access token the caller found wanting: if another
        caller has replaced it meanwhile, that login is returned without a new refresh.
        Raises :class:`LoginRevoked` when the provider refuses (the login must be made
        again), :class:`AccountError` when it cannot be reached."""
        async with self._lock, _file_lock(self.path):
            current = read_login(self.path)  # another process may have refreshed
            if stale is not None and current.access_token != stale:
                self._login = current
                return current
            body = {  # as Codex itself sends it
                "client_id": CLIENT_ID,
                "grant_type": "refresh_token",
                "refresh_token": current.refresh_token,
            }
            try:
                async with session.post(self.token_url, json=body, timeout=_TIMEOUT) as r:
                    status = r.status
                    answer = await r.json(content_type=None) if r.status < 500 else {}
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise AccountError(
                    f"account {self.name}: the login refresh failed ({type(exc).__name__})"
                ) from None
            if status in (400, 401) and isinstance(answer, dict):
                raise LoginRevoked(
                    f"account {self.name}: the provider refused to refresh its ChatGPT "
                    f"login ({_error_code(answer, status)}); log in again with "
                    f"`fleetwarden accounts login {self.name}`"
                )
            if status != 200 or not isinstance(answer, dict):  # passing: not the login
                raise AccountError(
                    f"account {self.name}: the login refresh failed "
                    f"({_error_code(answer, status)}); it will be tried again"
                )
            login = _renewed(current, answer, now)
            save_login(self.path, login)
            self._login = login
            self.refreshes += 1
            log.info("account %s: ChatGPT login refreshed", self.name)
            return login


def _error_code(answer: object, status: int) -> str:
    error = answer.get("error") if isinstance(answer, dict) else None
    code = error.get("code") if isinstance(error, dict) else error
    return f"{status} {code}" if isinstance(code, str) and code.isidentifier() else str(status)


def _lock_file(path: Path) -> Path:
    lock = path.with_name(".auth.lock")
    lock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return lock


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """``flock`` on the file beside the login, waited for in a thread: another process
    holding it (``accounts check`` refreshing) never stalls the proxy's event loop."""
    fd = open_private(_lock_file(path), os.O_WRONLY)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
