"""The user groups a Slack user is in, as the ACL names them: ``usergroup:S…``.

They are as Slack says them now. ``usergroups.list`` (with its users) is read at start.
Before an event of a person is judged, the groups are read again if the last reading began
more than ``max_age`` seconds ago or a change was told since (:meth:`UserGroups.fresh`):
one reading serves every event that waits on it, and a reading that fails is
:class:`GroupsUnread`, which is judged closed. Slack tells a change by
``subteam_members_changed``, ``subteam_updated`` and ``subteam_created``
(:meth:`UserGroups.told`): the group is marked changed at once, so no event after it is
judged on the old members, and its members are read again
(``usergroups.users.list``); a disabled group (``date_delete`` set) is dropped.

:func:`with_groups` gives a person's event the groups to judge it with: none to wait on
for a person the config names by id (their own entry wins over every group).

A workspace that refuses (the ``usergroups:read`` scope missing, or no user groups on its
plan) gives everyone no groups, said once in the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from connectors.base import InboundMessage
from connectors.errors import ConnectorError
from connectors.slack.web import SlackWeb

log = logging.getLogger(__name__)

MAX_AGE_SECONDS: Final = 10.0
"""How old a reading of the groups may be when a person's event is judged."""
CHANGE_EVENTS: Final = frozenset({"subteam_members_changed", "subteam_updated", "subteam_created"})
"""Slack's events that tell a user group changed."""
_REFUSALS: Final = frozenset({"missing_scope", "not_allowed", "paid_only", "plan_upgrade_required"})


class GroupsUnread(ConnectorError):
    """Slack's user groups could not be read when an event was to be judged on them."""


class UserGroups:
    """The workspace's user groups and their members, read again when old or changed."""

    def __init__(
        self, web: SlackWeb, *, max_age: float = MAX_AGE_SECONDS, clock: Callable[[], float]
    ) -> None:
        """``clock``: monotonic seconds, by which a reading's age is told."""
        self._web = web
        self._max_age = max_age
        self._clock = clock
        self._groups: dict[str, tuple[str, ...]] = {}  # group id -> its members
        self._members: dict[str, tuple[str, ...]] = {}  # user -> usergroup:S…
        self._read_at = float("-inf")
        self._read_change = -1  # the count of changes told when the last reading began
        self._changes = 0
        self._reading: asyncio.Task[None] | None = None
        self._reading_from: tuple[float, int] = (float("-inf"), -1)
        self._rereads: set[asyncio.Task[None]] = set()
        self._refused = False

    def cached(self, user: str) -> tuple[str, ...]:
        """The groups ``user`` was in at the last reading (no call to Slack)."""
        return self._members.get(user, ())

    async def fresh(self, user: str) -> tuple[str, ...]:
        """The groups ``user`` is in, read again first when the last reading is older than
        the bound or a change was told since; :class:`GroupsUnread` when it fails."""
        if self._refused:
            return ()
        now = self._clock()
        if self._read_change == self._changes and now - self._read_at <= self._max_age:
            return self.cached(user)
        began, change = self._reading_from
        if (
            self._reading is None
            or self._reading.done()
            or change != self._changes
            or now - began > self._max_age
        ):
            self._reading = asyncio.get_running_loop().create_task(
                self._read(), name="slack-usergroups"
            )
            self._reading_from = (now, self._changes)
        await asyncio.shield(self._reading)
        return () if self._refused else self.cached(user)

    async def refresh(self) -> None:
        """Read the groups now (at start); a failure is logged and keeps what was known."""
        try:
            await self._read()
        except GroupsUnread as exc:
            log.warning("slack: %s", exc)

    async def _read(self) -> None:
        began, change = self._clock(), self._changes
        try:
            answer = await self._web.call("usergroups.list", {"include_users": True})
        except ConnectorError as exc:
            error = getattr(exc, "error", "")
            if error in _REFUSALS:
                self._refused = True
                log.warning("slack: user groups cannot be read (%s): none are used", exc)
                return
            raise GroupsUnread(f"Slack's user groups could not be read: {exc}") from None
        if change < self._read_change or began < self._read_at:
            return  # a later reading came back first: this one's answer is older
        groups: dict[str, tuple[str, ...]] = {}
        found = answer.get("usergroups")
        for group in found if isinstance(found, list) else []:
            if isinstance(group, Mapping) and isinstance(group.get("id"), str):
                groups[group["id"]] = _users(group.get("users"))
        self._take(groups)
        self._read_at, self._read_change = began, change

    def told(self, event: Mapping[str, Any]) -> None:
        """A change Slack told (one of :data:`CHANGE_EVENTS`): the groups count as changed
        at once, and the group's members are read again in the background."""
        if self._refused or event.get("type") not in CHANGE_EVENTS:
            return
        self._changes += 1
        subteam = event.get("subteam")
        group = event.get("subteam_id")
        if isinstance(subteam, Mapping):
            group = subteam.get("id")
            deleted = subteam.get("date_delete")
            if isinstance(group, str) and isinstance(deleted, int) and deleted > 0:
                self._take({k: v for k, v in self._groups.items() if k != group})
                if self._read_change == self._changes - 1:
                    self._read_change = self._changes
                return
        if not isinstance(group, str):
            return
        task = asyncio.get_running_loop().create_task(
            self._reread(group, self._changes), name="slack-usergroup"
        )
        self._rereads.add(task)
        task.add_done_callback(self._rereads.discard)

    async def _reread(self, group: str, change: int) -> None:
        """Read ``group``'s members; when nothing else changed meanwhile and the last full
        reading is still young, the groups count as read at that reading again."""
        try:
            answer = await self._web.call("usergroups.users.list", {"usergroup": group})
        except ConnectorError as exc:
            log.warning("slack: user group %s not read again: %s", group, exc)
            return  # still counted as changed: the next event waits on a full reading
        self._take({**self._groups, group: _users(answer.get("users"))})
        if self._changes == change and self._read_change == change - 1:
            self._read_change = change

    def _take(self, groups: dict[str, tuple[str, ...]]) -> None:
        members: dict[str, list[str]] = {}
        for group, users in groups.items():
            for user in users:
                members.setdefault(user, []).append(f"usergroup:{group}")
        self._groups = groups
        self._members = {user: tuple(found) for user, found in members.items()}

    async def stop(self) -> None:
        tasks = [*self._rereads, *([self._reading] if self._reading is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Unjudged:
    """An event not judged, for its sender's groups could not be read."""

    why: str | None  # what to tell the sender where they wrote; None: only logged


async def with_groups(
    inbound: InboundMessage,
    groups: UserGroups,
    is_operator: Callable[[str, tuple[str, ...]], bool] | None,
) -> InboundMessage | Unjudged:
    """``inbound`` with its sender's groups as Slack says them now, or the cached ones when
    ``is_operator`` knows the sender without any group; :class:`Unjudged` when they could
    not be read, with why to tell the sender if those groups may have given them a role."""
    user = inbound.sender
    if is_operator is not None and is_operator(user, ()):
        return dataclasses.replace(inbound, groups=groups.cached(user))
    try:
        return dataclasses.replace(inbound, groups=await groups.fresh(user))
    except GroupsUnread as exc:
        log.warning("slack: an event of %s not judged: %s", user, exc)
        known = groups.cached(user)
        if not known or (is_operator is not None and not is_operator(user, known)):
            return Unjudged(None)
        return Unjudged(
            f"{user}: not acted on: {exc}, so your role through a user group cannot be "
            "checked. Try again shortly; if this goes on, check the app's `usergroups:read` "
            "scope (docs/slack.md)."
        )


def _users(users: object) -> tuple[str, ...]:
    return tuple(user for user in users if isinstance(user, str)) if isinstance(users, list) else ()
