"""What ``check-config --online`` asks Slack: the bot token (``auth.test``, and whether
its scopes are every one the app needs) and, in socket mode, the app-level token
(``apps.connections.open``: a WebSocket address is handed out, never opened). Each refusal
in Fleetwarden's words at the key of the variable it read, never the token itself.

Slack says which scopes a token holds in the ``x-oauth-scopes`` header of every answer,
and names the one a call lacked in a ``missing_scope`` error's ``needed``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config.checks.slack import APP, BOT, SECTION, Wanted, token_problem
from connectors.slack.config import API_BASE_ENV, SlackConfig
from connectors.slack.manifest import SESSION_SCOPE, bot_scopes
from connectors.slack.reach import unreachable
from fleet.budgets.schema import Loc

log = logging.getLogger(__name__)

GUIDE = "docs/slack.md"
TIMEOUT_SECONDS = 20
_REFUSED = {
    "invalid_auth": "the token is not one Slack knows: copy it again",
    "not_authed": "no token reached Slack",
    "account_inactive": "the app's bot user or workspace is gone: reinstall the app",
    "token_revoked": "the token was revoked: reinstall the app and copy the new one",
    "token_expired": "the token expired (token rotation is on): turn token rotation off",
    "not_allowed_token_type": "it is the wrong kind of token for this call",
    "ekm_access_denied": "the workspace's key management refused it",
}


async def slack_problems(
    slack: SlackConfig | None, environ: Mapping[str, str]
) -> list[tuple[Loc, str]]:
    """Slack asked with each of the app's tokens now; what it refused or what the bot
    token lacks, each at the key of the variable it came from."""
    if slack is None:
        return []
    try:
        base = api_base(slack, environ)
    except ValueError as exc:
        return [((*SECTION, "api_base"), str(exc))]
    found: list[tuple[Loc, str]] = []
    wanted = [(slack.bot_token_env, BOT)]
    if slack.mode == "socket" and slack.app_token_env is not None:
        wanted.append((slack.app_token_env, APP))
    for variable, token in wanted:
        problem = token_problem(environ, variable, token)  # said at load; kept if asked alone
        if problem is None:
            value = environ[variable].strip()
            if token is BOT:
                client = AsyncWebClient(token=value, base_url=base, timeout=TIMEOUT_SECONDS)
                problem = await _bot(client, variable, slack)
            else:
                client = AsyncWebClient(base_url=base, timeout=TIMEOUT_SECONDS)
                problem = await _app(client, variable, value)
        if problem is not None:
            found.append(((*SECTION, token.key), problem))
    return found


def api_base(slack: SlackConfig, environ: Mapping[str, str]) -> str:
    """The Web API base URL to call, ending in ``/``: ``FLEETWARDEN_SLACK_API_BASE`` when
    set (tests), else the section's ``api_base``; ``ValueError`` naming the variable if it
    is no http(s) URL."""
    override = environ.get(API_BASE_ENV, "").strip()
    if not override:
        return slack.api_base
    if urlsplit(override).scheme not in ("http", "https") or not urlsplit(override).netloc:
        raise ValueError(f"{API_BASE_ENV} must be an http:// or https:// URL, got {override!r}")
    return override.rstrip("/") + "/"


async def _bot(client: AsyncWebClient, variable: str, slack: SlackConfig) -> str | None:
    """``auth.test`` with the bot token, and the scopes its answer says it holds."""
    try:
        answer = await client.auth_test()
    except SlackApiError as exc:
        return _refusal(exc, variable, BOT)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return _unreachable(client, exc)
    held = {s.strip() for s in str(answer.headers.get("x-oauth-scopes", "")).split(",")}
    missing = sorted(bot_scopes(slack.agent_sessions) - held)
    if not missing:
        return None
    fix = (
        f"add {'it' if len(missing) == 1 else 'them'} under OAuth & Permissions → Bot Token "
        "Scopes (or paste the manifest in "
        f"{GUIDE} again), then reinstall the app to the workspace"
    )
    if SESSION_SCOPE in missing:
        fix += (
            f"; {SESSION_SCOPE} comes with declaring the app an agent (Agents & AI Apps), "
            "or set agent_sessions: false"
        )
    return f"the bot token in {variable} lacks the scope{_s(missing)} {', '.join(missing)}: {fix}"


async def _app(client: AsyncWebClient, variable: str, token: str) -> str | None:
    """``apps.connections.open`` with the app-level token: a socket address is handed
    out (Socket Mode on, ``connections:write`` granted); it is not opened."""
    try:
        await client.apps_connections_open(app_token=token)
    except SlackApiError as exc:
        return _refusal(exc, variable, APP)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return _unreachable(client, exc)
    return None


def _refusal(exc: SlackApiError, variable: str, token: Wanted) -> str:
    """Slack's ``ok: false`` in words, naming the variable; never the token."""
    error = str(exc.response.get("error", "")) or f"HTTP {exc.response.status_code}"
    if error == "missing_scope":
        needed = str(exc.response.get("needed", "")) or "?"
        return (
            f"Slack refused {token.what} in {variable}: missing_scope, it needs {needed}: "
            f"add it to the app ({token.where}) and reinstall the app"
        )
    if error == "not_allowed_token_type" and token is APP:
        return (
            f"Slack refused {token.what} in {variable}: not_allowed_token_type, it is no "
            f"app-level token: {token.what} starts {token.prefix} ({token.where})"
        )
    if error in ("socket_mode_not_enabled", "app_is_not_socket_mode_enabled"):
        return (
            f"Slack refused {token.what} in {variable}: {error}: turn Socket Mode on "
            "(Settings → Socket Mode), or set mode: http"
        )
    why = _REFUSED.get(error, f"see {GUIDE}")
    return f"Slack refused {token.what} in {variable}: {error} ({why}; {token.where})"


def _unreachable(client: AsyncWebClient, exc: BaseException) -> str:
    log.debug("slack could not be reached", exc_info=exc)
    return unreachable(client.base_url, exc)


def _s(items: list[str]) -> str:
    return "" if len(items) == 1 else "s"
