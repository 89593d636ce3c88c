"""The fake Discord's one guild: its users, roles, members, channels and threads, and the
payloads that describe them (snowflakes, User, Member, Role, Guild, Channel objects).
"""

from __future__ import annotations

import asyncio
import itertools
import mimetypes
import time
from collections.abc import Callable

from aiohttp import web

from tests.fakes.discord.records import Attachment, Json, PostedMessage, _Interaction, _Session
from tests.fakes.discord.wire import (
    DISCORD_EPOCH_MS,
    EVERYONE_PERMISSIONS,
    PUBLIC_THREAD,
    TEXT_CHANNEL,
    _iso,
)
from tests.fakes.loopback import LoopbackServer


class GuildState(LoopbackServer):
    """Everything the fake holds, and the payloads it builds from it; the gateway, REST
    routes and interactions are the layers above."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_name: str = "fleetwarden",
        heartbeat_interval_ms: int = 41_250,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.deny_message_content_intent = False
        self.away = False  # the gateway refuses every connection (an outage) while set
        self.identifies = 0
        self.resumes = 0
        self.heartbeats = 0
        self.gateway_paths: list[str] = []
        self.rate_limited: list[tuple[str, str]] = []
        # (method, path under the API base) of every authorized REST request, 429s included;
        # interaction callbacks and webhook routes are authorized by the token in their path.
        self.requests: list[tuple[str, str]] = []
        self.typing: list[int] = []  # channels a typing indicator was triggered in, in order
        self.reactions: list[tuple[int, int, str]] = []  # (message id, user id, emoji) added
        self.edits: list[tuple[int, int, Json]] = []  # (channel, message, body) of bot edits
        self._clock = clock
        self._counter = itertools.count(1)
        self._session: _Session | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._pending_429: dict[tuple[str, str], list[tuple[float, bool]]] = {}
        self._users: dict[str, Json] = {}
        self._messages: dict[int, list[PostedMessage]] = {}
        self._files: dict[tuple[int, int, str], Attachment] = {}
        self._granted: dict[str, list[str]] = {}  # user id -> role ids, as member.roles has them
        self._outbox: list[asyncio.Task[bool]] = []
        # The guild's slash commands as Discord answers them (ApplicationCommand objects).
        self.guild_commands: list[Json] = []
        # INTERACTION_CREATE payloads by interaction id, and what the bot answered to each:
        # callbacks exactly as sent ({"type": 4, "data": {...}}), followups and edits as
        # {"type": "followup" | "edit", "message_id": ..., "data": <webhook body>}.
        self.interactions: dict[str, Json] = {}
        self.interaction_responses: dict[str, list[Json]] = {}
        # Seconds the bot has to answer an interaction's callback (Discord: 3); None: no limit.
        self.interaction_deadline: float | None = None
        self._interactions: dict[int, _Interaction] = {}
        self.bot_user: Json = self._user(bot_name, bot=True)
        self.application_id = self._snowflake()
        self.guild_id = self._snowflake()
        self._roles: dict[int, Json] = {self.guild_id: self._role(self.guild_id, "@everyone")}
        self._roles[self.guild_id]["permissions"] = EVERYONE_PERMISSIONS
        self.control_channel_id = self._snowflake()
        self._channels: dict[int, Json] = {
            self.control_channel_id: {
                "id": str(self.control_channel_id),
                "type": TEXT_CHANNEL,
                "guild_id": str(self.guild_id),
                "name": "fleet-control",
                "position": 0,
                "flags": 0,
                "parent_id": None,
                "topic": None,
                "nsfw": False,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "default_auto_archive_duration": 1440,
                "default_thread_rate_limit_per_user": 0,
                "permission_overwrites": [],
            }
        }

    @property
    def threads(self) -> list[Json]:
        """Every thread channel created, archived ones included (live payloads)."""
        return [c for c in self._channels.values() if c["type"] == PUBLIC_THREAD]

    def user_id(self, name: str) -> int:
        """The snowflake of the human named ``name``, creating the user if it is new."""
        return int(self._user(name)["id"])

    def _require_thread(self, thread_id: int) -> Json:
        channel = self._channels.get(thread_id)
        if channel is None or channel["type"] != PUBLIC_THREAD:
            raise KeyError(f"no thread {thread_id}")
        return channel

    def _snowflake(self) -> int:
        ms = int(self._clock() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0xFFF)

    def _user(self, name: str, *, bot: bool = False) -> Json:
        if name not in self._users:
            user: Json = {
                "id": str(self._snowflake()),
                "username": name,
                "discriminator": "0",
                "global_name": None if bot else name.title(),
                "avatar": None,
                "public_flags": 0,
            }
            if bot:
                user.update(bot=True, verified=True, mfa_enabled=False, flags=0)
            self._users[name] = user
        return self._users[name]

    def _role(self, role_id: int, name: str, *, position: int = 0) -> Json:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": "0",
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _member(self, user: Json, *, partial: bool = False) -> Json:
        """A guild member; ``partial`` leaves out ``user``, as MESSAGE_CREATE's ``member`` does."""
        member: Json = {
            "roles": list(self._granted.get(user["id"], [])),
            "nick": None,
            "avatar": None,
            "joined_at": _iso(self._clock()),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if not partial:
            member["user"] = user
        return member

    def _permissions(self, user: Json) -> str:
        """A member's guild permissions: @everyone's and their roles' (no overwrites exist)."""
        value = int(self._roles[self.guild_id]["permissions"])
        for role_id in self._granted.get(user["id"], []):
            value |= int(self._roles[int(role_id)]["permissions"])
        return str(value)

    def _application(self) -> Json:
        return {
            "id": str(self.application_id),
            "name": self.bot_user["username"],
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
            "owner": self._user("owner"),
            "team": None,
            "bot": self.bot_user,
            "interactions_endpoint_url": None,
        }

    def _guild(self) -> Json:
        now = _iso(self._clock())
        guild_id = str(self.guild_id)
        channels = [c for c in self._channels.values() if c["type"] == TEXT_CHANNEL]
        active = [c for c in self.threads if not c["thread_metadata"]["archived"]]
        return {
            "id": guild_id,
            "name": "Fleet",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self._user("owner")["id"],
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "features": [],
            "roles": list(self._roles.values()),
            "emojis": [],
            "stickers": [],
            "joined_at": now,
            "large": False,
            "unavailable": False,
            "member_count": 2,
            "members": [self._member(self.bot_user)],
            "channels": channels,
            "threads": active,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _thread(self, parent_id: int, thread_id: int, body: Json) -> Json:
        now = _iso(self._clock())
        return {
            "id": str(thread_id),
            "type": PUBLIC_THREAD,
            "guild_id": str(self.guild_id),
            "parent_id": str(parent_id),
            "owner_id": self.bot_user["id"],
            "name": str(body.get("name", "thread")),
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": body.get("rate_limit_per_user") or 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": body.get("auto_archive_duration") or 4320,
                "archive_timestamp": now,
                "locked": False,
                "create_timestamp": now,
            },
            "member": {
                "id": str(thread_id),
                "user_id": self.bot_user["id"],
                "join_timestamp": now,
                "flags": 1,
            },
        }

    def _attachment(self, channel_id: int, filename: str, data: bytes) -> Attachment:
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        attachment = Attachment(self._snowflake(), filename, data, content_type)
        self._files[(channel_id, attachment.id, filename)] = attachment
        return attachment

    def _attachment_payload(self, channel_id: int, attachment: Attachment) -> Json:
        url = f"{self.base_url}/attachments/{channel_id}/{attachment.id}/{attachment.filename}"
        return {
            "id": str(attachment.id),
            "filename": attachment.filename,
            "size": len(attachment.data),
            "url": url,
            "proxy_url": url,
            "content_type": attachment.content_type,
        }
