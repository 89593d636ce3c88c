"""A ChatGPT login kept fresh: its access token refreshed over HTTP here and nowhere else,
under a lock (an ``asyncio.Lock`` in this process, ``flock`` on a file beside the login for
another Fleetwarden command such as ``accounts check``): of many requests that found the
same access token stale, the first refreshes and the rest take its result. The login file
itself is :mod:`fleet.accounts.chatgpt`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Final

import aiohttp

from fleet.accounts.chatgpt import (
    CLIENT_ID,
    ChatGptLogin,
    lock_file,
    read_login,
    renewed,
    save_login,
)
from fleet.accounts.model import AccountError
from fleet.private_files import open_private

log = logging.getLogger(__name__)

_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)


class LoginRevoked(AccountError):
    """The provider refused to refresh the login: it must be made again."""


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
            login = renewed(current, answer, now)
            save_login(self.path, login)
            self._login = login
            self.refreshes += 1
            log.info("account %s: ChatGPT login refreshed", self.name)
            return login


def _error_code(answer: object, status: int) -> str:
    error = answer.get("error") if isinstance(answer, dict) else None
    code = error.get("code") if isinstance(error, dict) else error
    return f"{status} {code}" if isinstance(code, str) and code.isidentifier() else str(status)


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """``flock`` on the file beside the login, waited for in a thread: another process
    holding it (``accounts check`` refreshing) never stalls the proxy's event loop."""
    fd = open_private(lock_file(path), os.O_WRONLY)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
