"""Slack's Web API as the connector calls it: one method at a time, Slack's refusals as
:class:`~connectors.slack.pacing.SlackRefused` (with a ``ratelimited`` answer's
``Retry-After``), a Slack never reached as :class:`~connectors.slack.reach.SlackUnreachable` (in
``check-config``'s words), the client's other failures as
:class:`~connectors.errors.ConnectorError`.

slack-sdk's :class:`AsyncWebClient` does the HTTP (JSON bodies, the bot token as a bearer
token); the same client serves slack-bolt, so the app and the connector share one view of
the workspace. Who the bot is comes from ``auth.test`` (:class:`Identity`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from connectors.errors import ConnectorAuthError, ConnectorError
from connectors.slack.pacing import SlackRefused
from connectors.slack.reach import NETWORK_ERRORS, SlackUnreachable, unreachable

log = logging.getLogger(__name__)

AUTH_ERRORS: Final = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
"""Answers that mean the token itself is refused: retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the bot token is (``auth.test``): its user, its team, the team's web address."""

    user_id: str
    team_id: str
    url: str  # https://<team>.slack.com/
    bot_id: str | None = None


class SlackWeb:
    """The Web API through one :class:`AsyncWebClient`."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def call(self, method: str, args: dict[str, Any]) -> Mapping[str, Any]:
        """``method`` with ``args`` (a JSON body): Slack's answer when ``ok``."""
        try:
            response = await self.client.api_call(method, json=args)
        except SlackApiError as exc:
            raise _refused(method, exc) from None
        except NETWORK_ERRORS as exc:
            log.debug("slack: %s: not reached", method, exc_info=exc)
            raise SlackUnreachable(
                f"slack: {method}: {unreachable(self.client.base_url, exc)}"
            ) from None
        except SlackClientError as exc:
            raise ConnectorError(f"slack: {method} failed: {type(exc).__name__}: {exc}") from None
        data = response.data
        return data if isinstance(data, Mapping) else {}

    async def identity(self) -> Identity:
        """``auth.test``: who the bot token is. A refused token is a
        :class:`ConnectorAuthError`."""
        try:
            answer = await self.call("auth.test", {})
        except SlackRefused as exc:
            if exc.error in AUTH_ERRORS:
                raise ConnectorAuthError(
                    f"slack: the bot token was refused ({exc.error})"
                ) from None
            raise
        user, team = answer.get("user_id"), answer.get("team_id")
        if not isinstance(user, str) or not isinstance(team, str):
            raise ConnectorError("slack: auth.test named no bot user: is it a bot token?")
        url = str(answer.get("url") or "")
        bot = answer.get("bot_id")
        return Identity(
            user,
            team,
            url if url.endswith("/") else url + "/",
            bot if isinstance(bot, str) else None,
        )


def _refused(method: str, exc: SlackApiError) -> SlackRefused:
    response = exc.response
    error = "unknown_error"
    retry_after: float | None = None
    try:
        error = str(response.get("error") or f"HTTP {response.status_code}")
        if response.status_code == 429 and error.startswith("HTTP"):
            error = "ratelimited"
        headers = {str(k).lower(): v for k, v in (response.headers or {}).items()}
        raw = headers.get("retry-after")
        if isinstance(raw, list):
            raw = raw[0] if raw else None
        wait = float(raw) if raw is not None else None
        # "nan", "inf" or a negative would sleep forever or not at all: Slack's default then.
        retry_after = wait if wait is not None and math.isfinite(wait) and wait >= 0 else None
    except (AttributeError, TypeError, ValueError):
        pass
    needed = response.get("needed") if hasattr(response, "get") else None
    return SlackRefused(method, error, retry_after, needed if isinstance(needed, str) else "")
