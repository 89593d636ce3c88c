"""ChatGPT logins for Codex: the ``auth.json`` Fleetwarden keeps for each
``chatgpt_subscription`` account, as a file: read, checked, written whole (refreshing its
access token is :mod:`fleet.accounts.chatgpt_keeper`'s, in one place).

A login is Codex's own file (``auth_mode: chatgpt``, ``tokens`` with an ``id_token``, an
``access_token``, a ``refresh_token`` and the ``account_id``), made once by
``fleetwarden accounts login NAME`` and kept at ``<state_dir>/accounts/NAME/auth.json``,
mode 0600, always replaced whole (:func:`~fleet.private_files.write_private`).

**Refresh happens here and nowhere else.** A refresh rotates the refresh token, and the
old one is then refused — presenting it again revokes the whole login
(``refresh_token_reused``). So agents never hold a refresh token (they get placeholders),
and :class:`~fleet.accounts.chatgpt_keeper.LoginKeeper` refreshes under a lock.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from fleet.accounts.model import AccountError
from fleet.private_files import write_private

log = logging.getLogger(__name__)

# Codex's own OAuth client: a refresh must name the client the login was made with.
CLIENT_ID: Final = "app_EMoamEEZ73f0CkXaXp7hrann"
REFRESH_AHEAD: Final = timedelta(minutes=5)  # refresh a token this close to its expiry
_AUTH_CLAIM: Final = "https://api.openai.com/auth"


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
    lock = lock_file(path)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            save_login(path, login)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def renewed(login: ChatGptLogin, answer: Mapping[str, Any], now: datetime) -> ChatGptLogin:
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


def lock_file(path: Path) -> Path:
    """The file beside a login whose ``flock`` a refresh, and a save, hold."""
    lock = path.with_name(".auth.lock")
    lock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return lock
