"""The user groups a Slack user is in, as the ACL names them: ``usergroup:S…``.

``usergroups.list`` (with its users) is read at start and again, in the background, when
an event comes more than :data:`REFRESH_SECONDS` after the last reading; the cached answer
serves meanwhile, so translating an event never waits on Slack. A workspace that refuses
(the ``usergroups:read`` scope missing, or no user groups on its plan) gives everyone no
groups, said once in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Final

from connectors.errors import ConnectorError
from connectors.slack.web import SlackWeb

log = logging.getLogger(__name__)

REFRESH_SECONDS: Final = 300.0
"""How old the groups may be before they are read again."""


class UserGroups:
    """A cached view of the workspace's user groups and their members."""

    def __init__(self, web: SlackWeb, *, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._web = web
        self._refresh_seconds = refresh_seconds
        self._members: dict[str, tuple[str, ...]] = {}
        self._read_at = float("-inf")
        self._reading: asyncio.Task[None] | None = None
        self._refused = False

    def of(self, user: str) -> tuple[str, ...]:
        """The groups ``user`` is in, as ``usergroup:S…``, from the cache (read again in
        the background when it is old)."""
        old = time.monotonic() - self._read_at > self._refresh_seconds
        if old and not self._refused and (self._reading is None or self._reading.done()):
            self._reading = asyncio.create_task(self.refresh(), name="slack-usergroups")
        return self._members.get(user, ())

    async def refresh(self) -> None:
        """Read the groups now; a failure keeps what was known."""
        self._read_at = time.monotonic()
        try:
            answer = await self._web.call("usergroups.list", {"include_users": True})
        except ConnectorError as exc:
            error = getattr(exc, "error", "")
            if error in ("missing_scope", "not_allowed", "paid_only", "plan_upgrade_required"):
                self._refused = True
                log.warning("slack: user groups cannot be read (%s): none are used", exc)
            else:
                log.warning("slack: user groups not read again: %s", exc)
            return
        members: dict[str, list[str]] = {}
        groups = answer.get("usergroups")
        for group in groups if isinstance(groups, list) else []:
            if not isinstance(group, Mapping) or not isinstance(group.get("id"), str):
                continue
            users = group.get("users")
            for user in users if isinstance(users, list) else []:
                if isinstance(user, str):
                    members.setdefault(user, []).append(f"usergroup:{group['id']}")
        self._members = {user: tuple(found) for user, found in members.items()}

    async def stop(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
