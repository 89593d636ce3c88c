"""``fleetwarden accounts check``: for each account, whether its credential is there, has
the shape of one, and is accepted by its provider — by one request the provider does not
bill (a model list). Nothing here prints or logs a credential."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import aiohttp

from fleet.accounts.chatgpt_keeper import LoginKeeper
from fleet.accounts.inject import OAUTH_BETA
from fleet.accounts.model import Account, AccountError, AccountKind, AccountSet, login_path
from fleet.accounts.providers import ProviderApi, ProviderRoute

ANTHROPIC_VERSION: Final = "2023-06-01"
_TIMEOUT: Final = aiohttp.ClientTimeout(total=20)
_PRINTABLE: Final = frozenset(string.ascii_letters + string.digits + string.punctuation)


@dataclass(frozen=True, slots=True)
class Checked:
    """One account's check: each stage, and in words what went wrong (never the secret)."""

    account: Account
    present: bool
    well_formed: bool
    accepted: bool | None  # None: not asked (an earlier stage failed)
    detail: str

    @property
    def ok(self) -> bool:
        return self.present and self.well_formed and self.accepted is True


async def check_accounts(
    accounts: AccountSet,
    *,
    environ: Mapping[str, str],
    state_dir: Path,
    routes: Mapping[str, ProviderRoute],
    token_urls: Mapping[str, str],
    session: aiohttp.ClientSession,
    now: datetime,
) -> list[Checked]:
    """Check every account written in the config (implicit ones too), in name order."""
    results = []
    for name in sorted(accounts.accounts):
        account = accounts.accounts[name]
        route = routes.get(account.provider)
        if route is None:
            results.append(Checked(account, False, False, None, "its provider is not known"))
            continue
        if account.kind is AccountKind.CHATGPT_SUBSCRIPTION:
            keeper = LoginKeeper(name, login_path(state_dir, name), token_urls.get(name, ""))
            results.append(await _check_login(account, keeper, route, session, now))
        else:
            results.append(await _check_secret(account, environ, route, session))
    return results


async def _check_secret(
    account: Account,
    environ: Mapping[str, str],
    route: ProviderRoute,
    session: aiohttp.ClientSession,
) -> Checked:
    variable = account.secret_env or ""
    secret = environ.get(variable, "")
    if not secret.strip():
        state = "is not set" if variable not in environ else "is empty"
        return Checked(account, False, False, None, f"{variable} {state}")
    if len(secret) < 8 or not set(secret) <= _PRINTABLE:
        return Checked(
            account,
            True,
            False,
            None,
            f"{variable} does not look like a credential (spaces, line breaks or too short)",
        )
    headers: dict[str, str] = {}
    if route.api is ProviderApi.ANTHROPIC:
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if account.kind is AccountKind.CLAUDE_SUBSCRIPTION:
            headers["Authorization"] = f"Bearer {secret}"
            headers["anthropic-beta"] = OAUTH_BETA
        else:
            headers["x-api-key"] = secret
    else:
        headers["Authorization"] = f"Bearer {secret}"
    return await _ask(account, session, route.upstream.rstrip("/") + "/v1/models", headers)


async def _check_login(
    account: Account,
    keeper: LoginKeeper,
    route: ProviderRoute,
    session: aiohttp.ClientSession,
    now: datetime,
) -> Checked:
    try:
        login = keeper.load()
    except AccountError as exc:
        present = keeper.path.exists()
        return Checked(account, present, False, None, str(exc))
    try:
        if login.stale(now):
            login = await keeper.refresh(session, stale=login.access_token, now=now)
    except AccountError as exc:
        return Checked(account, True, True, False, str(exc))
    headers = {
        "Authorization": f"Bearer {login.access_token}",
        "chatgpt-account-id": login.account_id,
    }
    url = route.upstream.rstrip("/") + "/backend-api/codex/models"
    return await _ask(account, session, url, headers)


async def _ask(
    account: Account, session: aiohttp.ClientSession, url: str, headers: Mapping[str, str]
) -> Checked:
    try:
        async with session.get(url, headers=headers, timeout=_TIMEOUT) as answer:
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Checked(account, True, True, None, f"the provider could not be reached: {exc}")
    if status == 200:
        return Checked(account, True, True, True, "accepted")
    if status in (401, 403):
        return Checked(account, True, True, False, f"refused by the provider ({status})")
    return Checked(account, True, True, None, f"the provider answered {status}")
