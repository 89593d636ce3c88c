"""What the fake Slack workspace holds: its people, channels, user groups, messages and
agent sessions, and the record of every Web API call. Plain data; :mod:`world` acts on it."""

from __future__ import annotations

import itertools
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AGENT_STATUSES",
    "Call",
    "Channel",
    "Clock",
    "Message",
    "Session",
    "User",
    "Usergroup",
    "make_id",
]

# agents.sessions.setStatus's `status` (Slack's description of the argument).
AGENT_STATUSES = ("active", "processing", "suspended", "closed")
_ALPHABET = string.ascii_uppercase + string.digits
_serial = itertools.count(1)


def make_id(prefix: str) -> str:
    """A Slack-looking id: the prefix, then 10 upper-case letters and digits."""
    tail = f"{next(_serial):04d}" + "".join(secrets.choice(_ALPHABET) for _ in range(6))
    return prefix + tail


class Clock:
    """The fake's clock: wall time for ``ts`` values, monotonic time for limits and
    timeouts; every ``ts`` it gives is unique and increasing, as Slack's are per channel."""

    def __init__(self) -> None:
        self._last = 0.0

    def monotonic(self) -> float:
        return time.monotonic()

    def next_ts(self) -> str:
        now = max(round(time.time(), 6), round(self._last + 0.000001, 6))
        self._last = now
        return f"{now:.6f}"


@dataclass
class User:
    id: str
    name: str
    team_id: str
    is_bot: bool = False

    def as_slack(self) -> dict[str, Any]:
        """The user as users.info gives it."""
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "real_name": self.name,
            "deleted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "tz": "Etc/UTC",
            "tz_offset": 0,
            "profile": {
                "real_name": self.name,
                "display_name": self.name,
                "team": self.team_id,
            },
        }


@dataclass
class Channel:
    id: str
    name: str
    members: set[str]
    is_private: bool = False
    created: int = field(default_factory=lambda: int(time.time()))

    def as_slack(self, viewer: str) -> dict[str, Any]:
        """The channel as conversations.info shows it to ``viewer``."""
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_general": False,
            "is_member": viewer in self.members,
            "created": self.created,
            "creator": "",
            "name_normalized": self.name,
        }


@dataclass
class Usergroup:
    id: str
    handle: str
    team_id: str
    users: list[str]
    created: int = field(default_factory=lambda: int(time.time()))
    updated: int = field(default_factory=lambda: int(time.time()))
    deleted: int = 0  # when it was disabled (usergroups.disable); 0 while enabled

    def as_slack(self, include_users: bool) -> dict[str, Any]:
        """The group as usergroups.list lists it."""
        group: dict[str, Any] = {
            "id": self.id,
            "team_id": self.team_id,
            "handle": self.handle,
            "name": self.handle,
            "is_usergroup": True,
            "user_count": len(self.users),
            "date_delete": self.deleted,
        }
        if include_users:
            group["users"] = list(self.users)
        return group

    def as_subteam(self, creator: str) -> dict[str, Any]:
        """The group as a ``subteam_updated`` / ``subteam_created`` event carries it."""
        return {
            "id": self.id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": self.handle,
            "handle": self.handle,
            "is_external": False,
            "date_create": self.created,
            "date_update": self.updated,
            "date_delete": self.deleted,
            "auto_provision": False,
            "created_by": creator,
            "updated_by": creator,
            "users": list(self.users),
            "user_count": len(self.users),
        }


@dataclass
class Message:
    """A message as the workspace stores it (``user`` is the bot's user id for the bot's
    own; ``edited`` is set by chat.update)."""

    ts: str
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    bot_id: str | None = None
    edited: dict[str, str] | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)

    def as_slack(self, team_id: str) -> dict[str, Any]:
        """The message as conversations.history / replies list it."""
        shown: dict[str, Any] = {"type": "message", "user": self.user, "text": self.text}
        shown["ts"] = self.ts
        shown["team"] = team_id
        if self.bot_id:
            shown["bot_id"] = self.bot_id
        if self.blocks:
            shown["blocks"] = self.blocks
        if self.thread_ts:
            shown["thread_ts"] = self.thread_ts
        if self.replies:
            shown["reply_count"] = len(self.replies)
            shown["latest_reply"] = self.replies[-1]
        if self.edited:
            shown["edited"] = dict(self.edited)
        if self.reactions:
            shown["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        return shown


@dataclass
class Session:
    """An agent session (agents.sessions.setStatus): one per (channel, thread_ts)."""

    channel: str
    thread_ts: str
    status: str
    title: str | None
    history: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Call:
    """One Web API call as the fake saw it: the method, its arguments (token left out),
    which kind of token it came with, the answer and the HTTP status."""

    method: str
    args: dict[str, Any]
    token_kind: str | None
    answer: dict[str, Any]
    status: int = 200

    @property
    def error(self) -> str | None:
        return None if self.answer.get("ok") else str(self.answer.get("error"))
