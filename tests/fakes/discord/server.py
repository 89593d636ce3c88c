"""A fake Discord on 127.0.0.1: REST (API v10) and the gateway websocket, in real shapes.

The real discord.py client logs in against it once ``discord.http.Route.BASE`` is set to
:attr:`FakeDiscord.api_base` and ``DiscordWebSocket.DEFAULT_GATEWAY`` to
:attr:`FakeDiscord.gateway_url`. There is one guild with one text channel (the control
channel) and one bot user; any number of human users appear by name, and roles can be
added to the guild and granted to them. The gateway sends HELLO, answers heartbeats,
IDENTIFY (READY then GUILD_CREATE) and RESUME (missed dispatches replayed by sequence, then
RESUMED), and can be told to send RECONNECT or INVALID_SESSION, or to refuse the
message-content intent (close 4014). REST records every request's method and path and what
the bot posts (the request body, attachments' bytes too), reads a multipart upload as
Discord does (a ``payload_json`` part and ``files[n]`` parts, each listed in its
``attachments``, ten at most, each within the size limit: anything else is refused),
enforces Discord's message limits, resolves replies and mentions as Discord does, starts
threads from messages, archives and deletes channels, edits the bot's own messages (PATCH;
an unknown message is a 404, another author's a 403, as on Discord), and can answer the
next request on a route with a 429. A human can react to a message (MESSAGE_REACTION_ADD,
sent only to a session that asked for the GUILD_MESSAGE_REACTIONS intent, as Discord does);
REST shows the reactions' counts on a message and who added each emoji. Threads can also
be archived or deleted server-side, as Discord's auto-archive or a moderator would.

Slash commands: the bot's bulk overwrite of its guild commands is stored and answered with
ApplicationCommand objects; a human can then use one (INTERACTION_CREATE), and the bot's
callback (reply, ephemeral reply or defer), followups and edits of its responses arrive
through the token-authorized interaction and webhook routes, as on Discord.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import json
import mimetypes
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = ["Attachment", "FakeDiscord", "PostedMessage"]

Json = dict[str, Any]

API_VERSION = 10
DISCORD_EPOCH_MS = 1_420_070_400_000
MESSAGE_CONTENT_INTENT = 1 << 15
GUILD_MESSAGE_REACTIONS_INTENT = 1 << 10
TEXT_CHANNEL, PUBLIC_THREAD = 0, 11
# Gateway opcodes and close codes (discord.com/developers/docs/topics/opcodes-and-status-codes).
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = (
    0,
    1,
    2,
    6,
    7,
    9,
    10,
    11,
)
AUTHENTICATION_FAILED, DISALLOWED_INTENTS = 4004, 4014
EVERYONE_PERMISSIONS = "2248473465835073"  # no MANAGE_THREADS (1 << 34)
# Message types, message flags the bot may set, and Discord's limits on a message.
DEFAULT_MESSAGE, REPLY_MESSAGE = 0, 19
SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS = 1 << 2, 1 << 12
MAX_CONTENT, MAX_EMBEDS, MAX_EMBED_TOTAL, MAX_EMBED_FIELDS = 2000, 10, 6000, 25
EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
USER_MENTION, ROLE_MENTION = re.compile(r"<@!?(\d+)>"), re.compile(r"<@&(\d+)>")
# Application commands and interactions (discord.com/developers/docs/interactions).
CHAT_INPUT, STRING_OPTION = 1, 3
APPLICATION_COMMAND, GUILD_INSTALL, GUILD_CONTEXT = 2, 0, 0
CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE, MODAL = 4, 5, 9
CHAT_INPUT_COMMAND_MESSAGE = 20  # the message type of a slash command's responses
EPHEMERAL, LOADING = 1 << 6, 1 << 7
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
INTERACTION_TOKEN_LIFETIME = 15 * 60.0  # seconds a token answers followups and edits
MAX_COMMAND_OPTIONS, MAX_COMMAND_DESCRIPTION = 25, 100
# Discord's pattern is ^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$; \w stands in for it.
COMMAND_NAME = re.compile(r"[-_'\w]{1,32}")


@dataclass(frozen=True)
class Attachment:
    """One uploaded file as the fake received it."""

    id: int
    filename: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class PostedMessage:
    """A message stored by the fake.

    ``payload`` is the Message object as sent on the wire; ``request`` is the JSON body the
    bot sent (a multipart upload's ``payload_json``), empty for a human's message.
    """

    id: int
    channel_id: int
    author_id: int
    content: str
    attachments: tuple[Attachment, ...]
    payload: Json
    request: Json = field(default_factory=dict)


@dataclass
class _Interaction:
    """One INTERACTION_CREATE and what the bot has answered to it."""

    id: int
    token: str
    channel_id: int
    user: Json
    command: str
    created: float
    response_type: int | None = None
    original_id: int | None = None
    message_ids: list[int] = field(default_factory=list)  # original first, then followups
    ephemeral_messages: dict[int, Json] = field(default_factory=dict)


@dataclass
class _Session:
    id: str
    ws: web.WebSocketResponse | None = None
    intents: int = 0
    seq: int = 0
    log: list[Json] = field(default_factory=list)


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # Exactly application/json: discord.py compares the header verbatim, and aiohttp's
    # json_response would add "; charset=utf-8" so discord.py would see a plain string.
    data = json.dumps(body).encode()
    return web.Response(body=data, status=status, headers=headers, content_type="application/json")


def _error(status: int, message: str, code: int) -> web.Response:
    return _json({"message": message, "code": code}, status)


def _invalid_form(errors: Json) -> web.Response:
    """Discord's 50035: ``errors`` mirrors the body, each leaf an ``_errors`` list."""
    return _json({"code": 50035, "message": "Invalid Form Body", "errors": errors}, 400)


def _field_error(code: str, message: str) -> Json:
    return {"_errors": [{"code": code, "message": message}]}


def _too_long(limit: int) -> Json:
    return _field_error("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _nest(tree: Json, path: Sequence[str], leaf: Json) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = leaf


def _embed_errors(embeds: list[Json]) -> Json:
    """Embed limit violations keyed as Discord does: ``{"0": {"title": {"_errors": ...}}}``."""
    errors: Json = {}
    total = 0
    for index, embed in enumerate(embeds):
        texts: list[tuple[tuple[str, ...], str, int]] = [
            ((key,), str(embed.get(key) or ""), limit) for key, limit in EMBED_TEXT_LIMITS.items()
        ]
        for key, inner, limit in (("footer", "text", 2048), ("author", "name", 256)):
            texts.append(((key, inner), str((embed.get(key) or {}).get(inner) or ""), limit))
        found: Json = {}
        fields = embed.get("fields") or []
        if len(fields) > MAX_EMBED_FIELDS:
            found["fields"] = _too_long(MAX_EMBED_FIELDS)
        else:
            for position, item in enumerate(fields):
                slot = ("fields", str(position))
                texts.append(((*slot, "name"), str(item.get("name") or ""), 256))
                texts.append(((*slot, "value"), str(item.get("value") or ""), 1024))
        for path, text, limit in texts:
            total += len(text)
            if len(text) > limit:
                _nest(found, path, _too_long(limit))
        if not found and total > MAX_EMBED_TOTAL:
            message = f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"
            found = _field_error("MAX_EMBED_SIZE_EXCEEDED", message)
        if found:
            errors[str(index)] = found
    return errors


class _Refused(Exception):
    """A request Discord refuses, with the answer it gives."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


FILE_FIELD = re.compile(r"files\[(\d{1,3})\]")
MAX_ATTACHMENTS = 10


def _refused(field: str, code: str, message: str) -> _Refused:
    """Discord's 50035 about ``field`` of a multipart body."""
    return _Refused(_invalid_form({field: _field_error(code, message)}))


async def _multipart(request: web.Request) -> tuple[Json, list[tuple[str, bytes]]]:
    """A multipart message body as Discord's API takes it: one ``payload_json`` part, and
    each file in a part named ``files[n]`` with a filename, at most ten, none past
    :data:`ATTACHMENT_SIZE_LIMIT`, and each one listed in the payload's ``attachments``
    (``{"id": n, "filename": …}``) when it has that list. Anything else is refused."""
    body: object = None
    files: dict[int, tuple[str, bytes]] = {}
    async for part in await request.multipart():
        if not isinstance(part, aiohttp.BodyPartReader):
            raise _refused("_errors", "NESTED_MULTIPART", "Nested multipart")
        field = FILE_FIELD.fullmatch(part.name or "")
        if part.name == "payload_json" and body is None and part.filename is None:
            try:
                body = json.loads(await part.text())
            except ValueError:
                invalid = _error(400, "The request body contains invalid JSON.", 50109)
                raise _Refused(invalid) from None
        elif field is None or part.filename is None or int(field[1]) in files:
            raise _refused(str(part.name), "UNKNOWN_FIELD", "Unexpected part")
        else:
            data = bytes(await part.read())
            if len(data) > ATTACHMENT_SIZE_LIMIT:
                raise _Refused(_error(413, "Request entity too large", 40005))
            files[int(field[1])] = (part.filename, data)
    if not isinstance(body, dict):
        raise _refused("payload_json", "BASE_TYPE_REQUIRED", "This field is required")
    if len(files) > MAX_ATTACHMENTS:
        raise _Refused(_invalid_form({"attachments": _too_long(MAX_ATTACHMENTS)}))
    nested = body.get("data")  # an interaction callback's message
    listed = body.get(
        "attachments", nested.get("attachments") if isinstance(nested, dict) else None
    )
    if isinstance(listed, list):
        names = {str(entry.get("id")): entry.get("filename") for entry in listed}
        for index, (filename, _) in files.items():
            if str(index) not in names or names[str(index)] not in (None, filename):
                raise _refused("attachments", "ATTACHMENT_NOT_FOUND", f"files[{index}] unlisted")
    return body, [files[index] for index in sorted(files)]


def _is_empty(body: Json, uploads: Sequence[Attachment]) -> bool:
    """Discord's 50006: no visible content, no embeds and no files."""
    return not str(body.get("content") or "").strip() and not body.get("embeds") and not uploads


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds")


class FakeDiscord(LoopbackServer):
    """An aiohttp server on 127.0.0.1 (random port) playing Discord for one bot."""

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

    # --- lifecycle ---------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """The value for ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        """The value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (wrap it in ``yarl.URL``)."""
        return self.base_url.replace("http://", "ws://", 1) + "/"

    @property
    def resume_gateway_url(self) -> str:
        """Sent in READY; discord.py resumes there, so a resume is visible in gateway_paths."""
        return self.gateway_url + "resume/"

    def routes(self, app: web.Application) -> None:
        api = f"/api/v{API_VERSION}"
        app.router.add_get("/", self._gateway)
        app.router.add_get("/resume/", self._gateway)
        app.router.add_get("/attachments/{channel}/{id}/{filename}", self._cdn)
        app.router.add_route("*", api + "/{tail:.*}", self._rest)

    async def before_stop(self) -> None:
        for task in self._outbox:
            task.cancel()
        self._outbox.clear()
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    # --- test API ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a gateway session is identified and attached to a socket."""
        return self._session is not None and self._session.ws is not None

    @property
    def threads(self) -> list[Json]:
        """Every thread channel created, archived ones included (live payloads)."""
        return [c for c in self._channels.values() if c["type"] == PUBLIC_THREAD]

    def user_id(self, name: str) -> int:
        """The snowflake of the human named ``name``, creating the user if it is new."""
        return int(self._user(name)["id"])

    def add_role(self, name: str) -> int:
        """Create a role in the guild and return its id; GUILD_ROLE_CREATE follows if live."""
        role = self._role(self._snowflake(), name, position=len(self._roles))
        self._roles[int(role["id"])] = role
        self._dispatch_soon("GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": role})
        return int(role["id"])

    def grant_role(self, user: str, role_id: int) -> None:
        """Give the human named ``user`` a role: their messages' ``member.roles`` carry it.

        No GUILD_MEMBER_UPDATE is sent: Discord sends it only with the privileged
        GUILD_MEMBERS intent, and without it discord.py caches no other member.
        """
        if role_id not in self._roles or role_id == self.guild_id:
            raise ValueError(f"no grantable role {role_id}")
        roles = self._granted.setdefault(self._user(user)["id"], [])
        if str(role_id) not in roles:
            roles.append(str(role_id))

    async def archive_thread(self, thread_id: int, *, locked: bool = False) -> None:
        """Archive a thread server-side, as Discord's auto-archive does; THREAD_UPDATE follows.

        With ``locked`` the bot (no MANAGE_THREADS) can no longer post there.
        """
        thread = self._require_thread(thread_id)
        metadata = thread["thread_metadata"]
        metadata.update(archived=True, locked=locked, archive_timestamp=_iso(self._clock()))
        await self._dispatch("THREAD_UPDATE", thread)

    async def delete_thread(self, thread_id: int) -> None:
        """Delete a thread server-side, as a moderator would; THREAD_DELETE follows."""
        self._require_thread(thread_id)
        await self._remove_channel(thread_id)

    def _require_thread(self, thread_id: int) -> Json:
        channel = self._channels.get(thread_id)
        if channel is None or channel["type"] != PUBLIC_THREAD:
            raise KeyError(f"no thread {thread_id}")
        return channel

    def messages(self, channel_id: int) -> list[PostedMessage]:
        """What the bot posted in a channel or thread, oldest first."""
        bot_id = int(self.bot_user["id"])
        return [m for m in self._messages.get(channel_id, []) if m.author_id == bot_id]

    async def post_user_message(
        self,
        channel_id: int,
        author: str,
        content: str,
        *,
        files: Sequence[tuple[str, bytes]] = (),
    ) -> PostedMessage:
        """A human named ``author`` posts into a channel or thread; MESSAGE_CREATE follows."""
        uploads = [self._attachment(channel_id, name, data) for name, data in files]
        return await self._create_message(channel_id, self._user(author), content, uploads)

    async def edit_user_message(self, channel_id: int, message_id: int, content: str) -> None:
        """The human who posted ``message_id`` edits it to ``content``; MESSAGE_UPDATE follows
        with the whole message, as Discord sends it now (``edited_timestamp`` set)."""
        stored = self._messages[channel_id]
        index = next(i for i, m in enumerate(stored) if m.id == message_id)
        old = stored[index]
        new = {**old.payload, "content": content, "edited_timestamp": _iso(self._clock())}
        mentions, mention_roles, everyone = self._mentions(content, {}, None)
        new.update(mentions=mentions, mention_roles=mention_roles, mention_everyone=everyone)
        stored[index] = dataclasses.replace(old, content=content, payload=new)
        member = self._member(new["author"], partial=True)
        await self._dispatch(
            "MESSAGE_UPDATE", {**new, "guild_id": str(self.guild_id), "member": member}
        )

    def stored(self, message_id: int) -> PostedMessage:
        """Any message the fake holds (the bot's or a human's), by id; KeyError if none."""
        for stored in self._messages.values():
            for message in stored:
                if message.id == message_id:
                    return message
        raise KeyError(f"no message {message_id}")

    async def delete_user_message(self, channel_id: int, message_id: int) -> None:
        """The human who posted ``message_id`` deletes it; MESSAGE_DELETE follows. Raises
        KeyError for a message not in that channel."""
        stored = self._messages.get(channel_id, [])
        if not any(m.id == message_id for m in stored):
            raise KeyError(f"no message {message_id} in channel {channel_id}")
        self._messages[channel_id] = [m for m in stored if m.id != message_id]
        event = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
        }
        await self._dispatch("MESSAGE_DELETE", event)

    async def add_user_reaction(
        self, channel_id: int, message_id: int, user: str, emoji: str, *, bot: bool = False
    ) -> None:
        """The human named ``user`` (with ``bot``, the bot itself) reacts to ``message_id``
        with the unicode ``emoji``; MESSAGE_REACTION_ADD follows, in Discord's shape, if the
        session asked for reactions. Raises KeyError for a message not in that channel."""
        message = self._find_message(channel_id, str(message_id))
        if message is None:
            raise KeyError(f"no message {message_id} in channel {channel_id}")
        who = self.bot_user if bot else self._user(user)
        if (message_id, int(who["id"]), emoji) in self.reactions:
            return  # already there: Discord sends nothing
        self.reactions.append((message_id, int(who["id"]), emoji))
        session = self._session
        if session is None or not session.intents & GUILD_MESSAGE_REACTIONS_INTENT:
            return
        await self._dispatch(
            "MESSAGE_REACTION_ADD",
            {
                "user_id": who["id"],
                "channel_id": str(channel_id),
                "message_id": str(message_id),
                "guild_id": str(self.guild_id),
                "member": self._member(who),
                "emoji": {"id": None, "name": emoji},
                "message_author_id": str(message.author_id),
                "burst": False,
                "burst_colors": [],
                "type": 0,
            },
        )

    async def post_interaction(
        self, channel_id: int, author: str, command: str, options: Mapping[str, str]
    ) -> str:
        """The human named ``author`` uses the registered slash command ``command`` with
        string ``options`` in a channel or thread; INTERACTION_CREATE follows.

        Raises KeyError for an unknown channel or a command not in :attr:`guild_commands`,
        ValueError for options the command does not take as strings or required ones left
        out. Returns the interaction id, the key of :attr:`interactions` and
        :attr:`interaction_responses`.
        """
        registered = next(
            (c for c in self.guild_commands if c["name"] == command and c["type"] == CHAT_INPUT),
            None,
        )
        if registered is None:
            raise KeyError(f"no slash command {command!r} registered")
        channel = self._channels.get(channel_id)
        if channel is None:
            raise KeyError(f"no channel {channel_id}")
        user = self._user(author)
        if user.get("bot"):
            raise ValueError(f"{author!r} is a bot: only humans use slash commands")
        defined: dict[str, Json] = {o["name"]: o for o in registered.get("options") or []}
        if unknown := sorted(set(options) - set(defined)):
            raise ValueError(f"/{command} has no option {', '.join(unknown)}")
        data_options: list[Json] = []
        for name, option in defined.items():
            if name not in options:
                if option.get("required"):
                    raise ValueError(f"/{command} needs its option {name}")
                continue
            if option.get("type") != STRING_OPTION:
                raise ValueError(f"option {name} of /{command} is not a string option")
            data_options.append({"name": name, "type": STRING_OPTION, "value": options[name]})
        interaction_id = self._snowflake()
        secret = f"interaction:{interaction_id}:{secrets.token_urlsafe(48)}"
        token = base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")
        permissions = self._permissions(user)
        bot_permissions = self._permissions(self.bot_user)
        data: Json = {
            "id": registered["id"],
            "name": command,
            "type": CHAT_INPUT,
            "guild_id": str(self.guild_id),
        }
        if data_options:
            data["options"] = data_options
        # Discord sends the channel without overwrites or the bot's thread membership.
        hidden = ("permission_overwrites", "member")
        payload: Json = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": APPLICATION_COMMAND,
            "token": token,
            "version": 1,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": {
                **{k: v for k, v in channel.items() if k not in hidden},
                "permissions": permissions,
            },
            "member": {**self._member(user), "permissions": permissions},
            "data": data,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": bot_permissions,
            "entitlements": [],
            "authorizing_integration_owners": {str(GUILD_INSTALL): str(self.guild_id)},
            "context": GUILD_CONTEXT,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        self._interactions[interaction_id] = _Interaction(
            interaction_id, token, channel_id, user, command, self._clock()
        )
        self.interactions[str(interaction_id)] = payload
        self.interaction_responses[str(interaction_id)] = []
        await self._dispatch("INTERACTION_CREATE", payload)
        return str(interaction_id)

    def interaction_messages(self, interaction_id: str) -> list[Json]:
        """The messages answering an interaction as they now are (original response first,
        then followups; ephemeral ones too, which :meth:`messages` leaves out)."""
        record = self._interactions[int(interaction_id)]
        found = (self._interaction_message(record, m) for m in record.message_ids)
        return [m for m in found if m is not None]

    def rate_limit_next(
        self, method: str, path: str, retry_after: float = 0.05, *, is_global: bool = False
    ) -> None:
        """Answer the next ``method path`` (under the API base, e.g. ``/users/@me``) with 429."""
        self._pending_429.setdefault((method.upper(), path), []).append((retry_after, is_global))

    async def redeliver_last_user_message(self, channel_id: int) -> int:
        """Dispatch the MESSAGE_CREATE of the latest human message in a channel again, under
        a new sequence number, as Discord may after a resume (delivery is at least once).
        Returns the message id."""
        session = self._require_session()
        bot_id = str(self.bot_user["id"])
        for frame in reversed(session.log):
            data = frame["d"]
            if (
                frame["t"] == "MESSAGE_CREATE"
                and data["channel_id"] == str(channel_id)
                and data["author"]["id"] != bot_id
            ):
                await self._dispatch("MESSAGE_CREATE", data)
                return int(data["id"])
        raise KeyError(f"no human message in channel {channel_id}")

    async def go_away(self) -> None:
        """An outage: the gateway's connections closed, and new ones refused until
        :meth:`come_back`."""
        self.away = True
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    def come_back(self) -> None:
        """The end of the outage: the gateway takes connections (and resumes) again."""
        self.away = False

    async def force_reconnect(self) -> None:
        """Send op 7 RECONNECT; dispatches until the client resumes wait in the session log."""
        session = self._require_session()
        ws, session.ws = session.ws, None
        if ws is not None:
            await self._send(ws, {"op": RECONNECT, "d": None, "s": None, "t": None})

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; unless resumable the session is forgotten."""
        session = self._require_session()
        ws, session.ws = session.ws, None
        if not resumable:
            self._session = None
        if ws is not None:
            await self._send(ws, {"op": INVALID_SESSION, "d": resumable, "s": None, "t": None})

    def _require_session(self) -> _Session:
        if self._session is None:
            raise RuntimeError("no gateway session: the bot has not identified")
        return self._session

    # --- payloads ----------------------------------------------------------------

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

    def _message_payload(
        self,
        channel_id: int,
        author: Json,
        content: str,
        uploads: Sequence[Attachment],
        *,
        request: Json,
        referenced: PostedMessage | None = None,
    ) -> Json:
        """A new Message object; nothing is stored or dispatched."""
        message_id = self._snowflake()
        mentions, mention_roles, mention_everyone = self._mentions(content, request, referenced)
        payload: Json = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": _iso(self._clock()),
            "edited_timestamp": None,
            "tts": bool(request.get("tts", False)),
            "mention_everyone": mention_everyone,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "attachments": [self._attachment_payload(channel_id, a) for a in uploads],
            "embeds": [{**e, "type": e.get("type", "rich")} for e in request.get("embeds") or []],
            "pinned": False,
            "type": DEFAULT_MESSAGE,
            "flags": int(request.get("flags") or 0) & (SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS),
            "components": [],
        }
        if "nonce" in request:
            payload["nonce"] = request["nonce"]
        if referenced is not None:
            payload["type"] = REPLY_MESSAGE
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(referenced.id),
                "channel_id": str(referenced.channel_id),
                "guild_id": str(self.guild_id),
            }
            nested = {k: v for k, v in referenced.payload.items() if k != "referenced_message"}
            payload["referenced_message"] = nested
        return payload

    async def _create_message(
        self,
        channel_id: int,
        author: Json,
        content: str,
        uploads: list[Attachment],
        *,
        request: Json | None = None,
        referenced: PostedMessage | None = None,
        extra: Json | None = None,
    ) -> PostedMessage:
        """Store a message and dispatch MESSAGE_CREATE; ``request`` is the bot's body,
        ``extra`` fields override the payload's (an interaction response's type and flags)."""
        request = request or {}
        channel = self._channels[channel_id]
        payload = self._message_payload(
            channel_id, author, content, uploads, request=request, referenced=referenced
        )
        payload.update(extra or {})
        message_id = int(payload["id"])
        if channel["type"] == PUBLIC_THREAD:
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
            if channel["thread_metadata"]["archived"]:  # a new message unarchives, as on Discord
                channel["thread_metadata"]["archived"] = False
                await self._dispatch("THREAD_UPDATE", channel)
        channel["last_message_id"] = str(message_id)
        message = PostedMessage(
            message_id, channel_id, int(author["id"]), content, tuple(uploads), payload, request
        )
        self._messages.setdefault(channel_id, []).append(message)
        member = self._member(author, partial=True)
        event = {**payload, "guild_id": str(self.guild_id), "member": member}
        await self._dispatch("MESSAGE_CREATE", event)
        return message

    def _mentions(
        self, content: str, request: Json, referenced: PostedMessage | None
    ) -> tuple[list[Json], list[str], bool]:
        """Who the message pings, filtered by ``allowed_mentions`` (absent: everything).

        As on Discord, a suppressed mention stays in the content but not in ``mentions``,
        ``mention_roles`` or ``mention_everyone``; a reply pings the replied-to author unless
        ``allowed_mentions`` is sent without ``replied_user: true``.
        """
        allowed = request.get("allowed_mentions")
        if allowed is None:
            parse, users, roles, replied = {"users", "roles", "everyone"}, set(), set(), True
        else:
            parse = set(allowed.get("parse") or [])
            users = {str(u) for u in allowed.get("users") or []}
            roles = {str(r) for r in allowed.get("roles") or []}
            replied = bool(allowed.get("replied_user", False))
        known = {u["id"]: u for u in self._users.values()}
        pinged = [u for u in USER_MENTION.findall(content) if "users" in parse or u in users]
        if referenced is not None and replied:
            pinged.append(str(referenced.author_id))
        mentions = [
            {**known[u], "member": self._member(known[u], partial=True)}
            for u in dict.fromkeys(pinged)
            if u in known
        ]
        grantable = {str(r) for r in self._roles if r != self.guild_id}
        mention_roles = [
            r
            for r in dict.fromkeys(ROLE_MENTION.findall(content))
            if r in grantable and ("roles" in parse or r in roles)
        ]
        everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
        return mentions, mention_roles, everyone

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

    # --- gateway -----------------------------------------------------------------

    async def _send(self, ws: web.WebSocketResponse, payload: Json) -> bool:
        if ws.closed:
            return False
        try:
            await ws.send_str(json.dumps(payload))
        except ConnectionError:
            return False
        return True

    def _sequence(self, session: _Session, event: str, data: Json) -> Json:
        session.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.log.append(frame)
        return frame

    async def _dispatch(self, event: str, data: Json) -> None:
        session = self._session
        if session is None:
            return
        frame = self._sequence(session, event, data)
        while self._outbox:  # frames sequenced earlier by _dispatch_soon go out first
            await self._outbox.pop(0)
        if session.ws is not None:
            await self._send(session.ws, frame)

    def _dispatch_soon(self, event: str, data: Json) -> None:
        """Dispatch from synchronous test API: sequenced now, sent before any later dispatch."""
        session = self._session
        if session is None:
            return
        frame = self._sequence(session, event, data)
        if session.ws is not None:
            task = asyncio.get_running_loop().create_task(self._send(session.ws, frame))
            self._outbox.append(task)

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self.away:
            return web.Response(status=503, text="upstream connect error")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.gateway_paths.append(request.path)
        self._sockets.add(ws)
        try:
            hello = {"heartbeat_interval": self.heartbeat_interval_ms}
            await self._send(ws, {"op": HELLO, "d": hello, "s": None, "t": None})
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                await self._on_frame(ws, json.loads(message.data))
        finally:
            self._sockets.discard(ws)
            if self._session is not None and self._session.ws is ws:
                self._session.ws = None
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, frame: Json) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            self.heartbeats += 1
            await self._send(ws, {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY and isinstance(data, dict):
            await self._identify(ws, data)
        elif op == RESUME and isinstance(data, dict):
            await self._resume(ws, data)

    async def _identify(self, ws: web.WebSocketResponse, data: Json) -> None:
        self.identifies += 1
        if data.get("token") != self.token:
            await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if self.deny_message_content_intent and intents & MESSAGE_CONTENT_INTENT:
            await ws.close(code=DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return
        self._session = _Session(uuid.uuid4().hex, ws, intents)
        ready = {
            "v": API_VERSION,
            "user": self.bot_user,
            "user_settings": {},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "session_id": self._session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "shard": [0, 1],
            "application": {"id": str(self.application_id), "flags": 1 << 19},
            "_trace": ["fake-discord"],
        }
        await self._dispatch("READY", ready)
        await self._dispatch("GUILD_CREATE", self._guild())

    async def _resume(self, ws: web.WebSocketResponse, data: Json) -> None:
        self.resumes += 1
        session = self._session
        if session is None or data.get("session_id") != session.id:
            await self._send(ws, {"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        session.ws = ws
        seen = int(data.get("seq") or 0)
        for frame in [f for f in session.log if f["s"] > seen]:
            await self._send(ws, frame)
        await self._dispatch("RESUMED", {"_trace": ["fake-discord"]})

    # --- REST --------------------------------------------------------------------

    def _rate_limit(self, method: str, path: str) -> web.Response | None:
        pending = self._pending_429.get((method, path))
        if not pending:
            return None
        retry_after, is_global = pending.pop(0)
        self.rate_limited.append((method, path))
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        body["global"] = is_global
        headers = {
            # discord.py treats a 429 without Via as a Cloudflare ban and does not retry.
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(retry_after + 0.5))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{self._clock() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": uuid.uuid5(uuid.NAMESPACE_URL, path).hex,
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        return _json(body, 429, headers)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._rest_route(request)
        except _Refused as refused:
            return refused.response

    async def _rest_route(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        parts = path.strip("/").split("/")
        # discord.py sends these without an Authorization header: the path's token is the key.
        by_token = len(parts) >= 3 and parts[0] in ("interactions", "webhooks")
        if not by_token and request.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, "401: Unauthorized", 0)
        self.requests.append((request.method, path))
        limited = self._rate_limit(request.method, path)
        if limited is not None:
            return limited
        method = request.method
        if by_token:
            return await self._token_route(request, parts)
        if parts[0] == "applications":
            return await self._commands(request, parts)
        if method == "GET" and path == "/users/@me":
            return _json(self.bot_user)
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json(self._application())
        if method == "GET" and path in ("/gateway", "/gateway/bot"):
            return _json(self._gateway_info(bot=path.endswith("/bot")))
        if parts[0] == "guilds" and len(parts) == 4 and parts[2] == "members" and method == "GET":
            return self._get_member(parts[1], parts[3])
        if parts[0] != "channels" or len(parts) < 2 or not parts[1].isdigit():
            return _error(404, "404: Not Found", 0)
        channel_id = int(parts[1])
        if channel_id not in self._channels:
            return _error(404, "Unknown Channel", 10003)
        rest = parts[2:]
        if rest == [] and method == "GET":
            return _json(self._channels[channel_id])
        if rest == [] and method == "PATCH":
            return await self._edit_channel(channel_id, await request.json())
        if rest == [] and method == "DELETE":
            return _json(await self._remove_channel(channel_id))
        if rest == ["messages"] and method == "POST":
            return await self._post_message(request, channel_id)
        if rest == ["messages"] and method == "GET":
            return self._history(channel_id, request.query)
        if len(rest) == 4 and rest[0] == "messages" and rest[2] == "reactions" and method == "GET":
            return self._reactors(channel_id, rest[1], rest[3], request.query)
        if len(rest) == 2 and rest[0] == "messages" and method == "PATCH":
            return await self._edit_message(request, channel_id, rest[1])
        if len(rest) == 3 and rest[0] == "messages" and rest[2] == "threads" and method == "POST":
            return await self._start_thread(channel_id, rest[1], await request.json())
        if rest == ["typing"] and method == "POST":  # Trigger Typing Indicator
            self.typing.append(channel_id)
            return web.Response(status=204)
        return _error(405, "405: Method Not Allowed", 0)

    def _history(self, channel_id: int, query: Mapping[str, str]) -> web.Response:
        """GET /channels/{id}/messages with ``after`` (and ``limit``, 1-100, default 50):
        the oldest messages after that id, newest first, as Discord sends them (without
        ``member``, which only the gateway adds)."""
        try:
            after = int(query.get("after", "0"))
            limit = int(query.get("limit", "50"))
        except ValueError:
            return _error(400, "Invalid Form Body", 50035)
        if not 1 <= limit <= 100 or set(query) - {"after", "limit"}:
            return _error(400, "Invalid Form Body", 50035)
        later = [m for m in self._messages.get(channel_id, []) if m.id > after][:limit]
        return _json([self._with_reactions(m) for m in reversed(later)])

    def _with_reactions(self, message: PostedMessage) -> Json:
        """The message as REST shows it: with its reactions' counts, when it has any."""
        counts: dict[str, int] = {}
        for message_id, _, emoji in self.reactions:
            if message_id == message.id:
                counts[emoji] = counts.get(emoji, 0) + 1
        if not counts:
            return message.payload
        bot_id = int(self.bot_user["id"])
        mine = {e for m, u, e in self.reactions if m == message.id and u == bot_id}
        reactions = [
            {
                "count": count,
                "count_details": {"burst": 0, "normal": count},
                "me": emoji in mine,
                "me_burst": False,
                "emoji": {"id": None, "name": emoji},
                "burst_colors": [],
            }
            for emoji, count in counts.items()
        ]
        return {**message.payload, "reactions": reactions}

    def _reactors(
        self, channel_id: int, message_id: str, emoji: str, query: Mapping[str, str]
    ) -> web.Response:
        """GET /channels/{id}/messages/{id}/reactions/{emoji}: who added ``emoji``, in
        order of user id, ``limit`` (1-100, default 25) after ``after``."""
        if self._find_message(channel_id, message_id) is None:
            return _error(404, "Unknown Message", 10008)
        try:
            limit = int(query.get("limit", "25"))
            after = int(query.get("after", "0"))
        except ValueError:
            return _error(400, "Invalid Form Body", 50035)
        if not 1 <= limit <= 100:
            return _error(400, "Invalid Form Body", 50035)
        users = sorted(
            {u for m, u, e in self.reactions if str(m) == message_id and e == emoji and u > after}
        )[:limit]
        by_id = {int(u["id"]): u for u in [*self._users.values(), self.bot_user]}
        return _json([by_id[u] for u in users])

    def _get_member(self, guild_id: str, user_id: str) -> web.Response:
        if guild_id != str(self.guild_id):
            return _error(404, "Unknown Guild", 10004)
        user = next((u for u in self._users.values() if u["id"] == user_id), None)
        if user is None or user.get("bot"):
            return _error(404, "Unknown Member", 10007)
        return _json(self._member(user))

    def _gateway_info(self, *, bot: bool) -> Json:
        info: Json = {"url": self.gateway_url.rstrip("/")}
        if bot:
            limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
            info.update(shards=1, session_start_limit=limit)
        return info

    async def _read_body(
        self, request: web.Request, channel_id: int
    ) -> tuple[Json, list[Attachment]]:
        """A JSON body, or a multipart upload's ``payload_json`` and its files, read as
        Discord reads them (:func:`_multipart`); what Discord would refuse raises
        :class:`_Refused` with Discord's answer."""
        if not request.content_type.startswith("multipart/"):
            return (await request.json() if request.can_read_body else {}), []
        body, files = await _multipart(request)
        return body, [self._attachment(channel_id, name, data) for name, data in files]

    def _content_errors(self, body: Json) -> Json:
        """Discord's limits on a message body's content and embeds, as 50035 errors."""
        content = str(body.get("content") or "")
        embeds: list[Json] = body.get("embeds") or []
        errors: Json = {}
        if len(content) > MAX_CONTENT:
            errors["content"] = _too_long(MAX_CONTENT)
        if len(embeds) > MAX_EMBEDS:
            errors["embeds"] = _too_long(MAX_EMBEDS)
        elif embed_errors := _embed_errors(embeds):
            errors["embeds"] = embed_errors
        return errors

    async def _post_message(self, request: web.Request, channel_id: int) -> web.Response:
        channel = self._channels[channel_id]
        if channel["type"] == PUBLIC_THREAD:
            metadata = channel["thread_metadata"]
            if metadata["archived"] and metadata["locked"]:  # unarchiving needs MANAGE_THREADS
                return _error(400, "Thread is archived", 50083)
        body, uploads = await self._read_body(request, channel_id)
        content = str(body.get("content") or "")
        errors = self._content_errors(body)
        referenced: PostedMessage | None = None
        reference = body.get("message_reference")
        if isinstance(reference, dict):
            referenced = self._find_message(
                int(reference.get("channel_id") or channel_id), str(reference.get("message_id"))
            )
            if referenced is None and reference.get("fail_if_not_exists", True):
                unknown = _field_error("MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
                errors["message_reference"] = unknown
        if errors:
            return _invalid_form(errors)
        if _is_empty(body, uploads):
            return _error(400, "Cannot send an empty message", 50006)
        message = await self._create_message(
            channel_id, self.bot_user, content, uploads, request=body, referenced=referenced
        )
        return _json(message.payload)

    async def _edit_message(
        self, request: web.Request, channel_id: int, message_id: str
    ) -> web.Response:
        """PATCH /channels/{id}/messages/{id}: the bot edits its own message's content and
        embeds (fields left out stay); MESSAGE_UPDATE follows with the whole message."""
        old = self._find_message(channel_id, message_id)
        if old is None:
            return _error(404, "Unknown Message", 10008)
        if old.author_id != int(self.bot_user["id"]):
            return _error(403, "Cannot edit a message authored by another user", 50005)
        body = await request.json()
        if not isinstance(body, dict):
            return _error(400, "Invalid Form Body", 50035)
        if errors := self._content_errors(body):
            return _invalid_form(errors)
        new: Json = {**old.payload, "edited_timestamp": _iso(self._clock())}
        if "content" in body:
            new["content"] = str(body["content"] or "")
        if "embeds" in body:
            new["embeds"] = [{**e, "type": e.get("type", "rich")} for e in body["embeds"] or []]
        if not new["content"] and not new["embeds"] and not new["attachments"]:
            return _error(400, "Cannot send an empty message", 50006)
        mentions, mention_roles, everyone = self._mentions(new["content"], body, None)
        new.update(mentions=mentions, mention_roles=mention_roles, mention_everyone=everyone)
        stored = self._messages[channel_id]
        index = stored.index(old)
        stored[index] = dataclasses.replace(old, content=new["content"], payload=new)
        self.edits.append((channel_id, int(message_id), body))
        member = self._member(self.bot_user, partial=True)
        await self._dispatch(
            "MESSAGE_UPDATE", {**new, "guild_id": str(self.guild_id), "member": member}
        )
        return _json(new)

    def _find_message(self, channel_id: int, message_id: str) -> PostedMessage | None:
        for message in self._messages.get(channel_id, []):
            if str(message.id) == message_id:
                return message
        return None

    async def _start_thread(self, channel_id: int, message_id: str, body: Json) -> web.Response:
        known = {str(m.id) for m in self._messages.get(channel_id, [])}
        if message_id not in known:
            return _error(404, "Unknown Message", 10008)
        if int(message_id) in self._channels:
            return _error(400, "A thread has already been created for this message", 160004)
        # A thread started from a message takes the message's id, as on Discord.
        thread = self._thread(channel_id, int(message_id), body)
        self._channels[int(message_id)] = thread
        await self._dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, 201)

    async def _edit_channel(self, channel_id: int, body: Json) -> web.Response:
        channel = self._channels[channel_id]
        if "name" in body:
            channel["name"] = str(body["name"])
        if channel["type"] == PUBLIC_THREAD:
            metadata = channel["thread_metadata"]
            for key in ("archived", "locked", "auto_archive_duration"):
                if key in body:
                    metadata[key] = body[key]
            if "archived" in body:
                metadata["archive_timestamp"] = _iso(self._clock())
            await self._dispatch("THREAD_UPDATE", channel)
        else:
            await self._dispatch("CHANNEL_UPDATE", channel)
        return _json(channel)

    async def _remove_channel(self, channel_id: int) -> Json:
        channel = self._channels.pop(channel_id)
        if channel["type"] == PUBLIC_THREAD:
            keys = ("id", "guild_id", "parent_id", "type")
            await self._dispatch("THREAD_DELETE", {k: channel[k] for k in keys})
        else:
            await self._dispatch("CHANNEL_DELETE", channel)
        return channel

    # --- slash commands and interactions -------------------------------------------

    async def _commands(self, request: web.Request, parts: list[str]) -> web.Response:
        """GET and PUT (bulk overwrite) /applications/{app}/guilds/{guild}/commands."""
        if len(parts) != 5 or parts[2] != "guilds" or parts[4] != "commands":
            return _error(404, "404: Not Found", 0)
        if parts[1] != str(self.application_id) or parts[3] != str(self.guild_id):
            return _error(403, "Missing Access", 50001)
        if request.method == "GET":
            return _json(self.guild_commands)
        if request.method == "PUT":
            return self._overwrite_commands(await request.json())
        return _error(405, "405: Method Not Allowed", 0)

    def _overwrite_commands(self, body: Any) -> web.Response:
        """Replace the guild's commands; one kept by name and type keeps its id, and its
        version unless it changed, as on Discord."""
        if not isinstance(body, list):
            return _invalid_form(_field_error("LIST_TYPE_CONVERT", "Only iterables may be used."))
        errors: Json = {}
        seen: set[tuple[str, int]] = set()
        for index, command in enumerate(body):
            found = self._command_errors(command)
            key = (str(command.get("name")), int(command.get("type") or CHAT_INPUT))
            if key in seen and "name" not in found:
                message = "Application command names must be unique"
                found["name"] = _field_error("APPLICATION_COMMANDS_DUPLICATE_NAME", message)
            seen.add(key)
            if found:
                errors[str(index)] = found
        if errors:
            return _invalid_form(errors)
        previous = {(c["name"], c["type"]): c for c in self.guild_commands}
        commands: list[Json] = []
        for command in body:
            kind = int(command.get("type") or CHAT_INPUT)
            stored: Json = {
                "id": str(self._snowflake()),
                "application_id": str(self.application_id),
                "version": "",
                "default_member_permissions": command.get("default_member_permissions"),
                "type": kind,
                "name": command["name"],
                "name_localizations": command.get("name_localizations"),
                "description": str(command.get("description") or ""),
                "description_localizations": command.get("description_localizations"),
                "guild_id": str(self.guild_id),
                "nsfw": bool(command.get("nsfw", False)),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types") or [GUILD_INSTALL],
            }
            if command.get("options"):
                stored["options"] = json.loads(json.dumps(command["options"]))
            old = previous.get((stored["name"], kind))
            unchanged = old is not None and all(
                old.get(k) == v for k, v in stored.items() if k not in ("id", "version")
            )
            if old is not None:
                stored["id"] = old["id"]
            stored["version"] = old["version"] if old and unchanged else str(self._snowflake())
            commands.append(stored)
        self.guild_commands = commands
        return _json(commands)

    def _command_errors(self, command: Any) -> Json:
        """50035 errors for one command: names, descriptions and options as Discord checks."""
        if not isinstance(command, dict):
            return _field_error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        errors: Json = {}
        chat_input = int(command.get("type") or CHAT_INPUT) == CHAT_INPUT
        self._check_name_and_description(command, errors, need_description=chat_input)
        options = command.get("options") or []
        if len(options) > MAX_COMMAND_OPTIONS:
            errors["options"] = _too_long(MAX_COMMAND_OPTIONS)
            return errors
        for index, option in enumerate(options):
            found: Json = {}
            self._check_name_and_description(option, found, need_description=True)
            if found:
                errors.setdefault("options", {})[str(index)] = found
        return errors

    def _check_name_and_description(
        self, item: Json, errors: Json, *, need_description: bool
    ) -> None:
        name = item.get("name")
        if not isinstance(name, str) or not COMMAND_NAME.fullmatch(name) or name != name.lower():
            message = "Command name is invalid"
            errors["name"] = _field_error("APPLICATION_COMMAND_INVALID_NAME", message)
        description = str(item.get("description") or "")
        if need_description and not 1 <= len(description) <= MAX_COMMAND_DESCRIPTION:
            message = f"Must be between 1 and {MAX_COMMAND_DESCRIPTION} in length."
            errors["description"] = _field_error("BASE_TYPE_BAD_LENGTH", message)

    async def _token_route(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        """/interactions/{id}/{token}/callback and /webhooks/{application}/{token}[/...]."""
        method = request.method
        if parts[0] == "interactions":
            if len(parts) == 4 and parts[3] == "callback" and method == "POST":
                return await self._callback(request, parts[1], parts[2])
            return _error(404, "404: Not Found", 0)
        record = next((r for r in self._interactions.values() if r.token == parts[2]), None)
        if parts[1] != str(self.application_id):
            return _error(404, "Unknown Webhook", 10015)
        if record is None or self._expired(record, INTERACTION_TOKEN_LIFETIME):
            return _error(401, "Invalid Webhook Token", 50027)
        if record.response_type is None:  # the webhook exists once the interaction is answered
            return _error(404, "Unknown Webhook", 10015)
        if len(parts) == 3 and method == "POST":
            return await self._followup(request, record)
        if len(parts) == 5 and parts[3] == "messages":
            return await self._webhook_message(request, record, parts[4])
        return _error(405, "405: Method Not Allowed", 0)

    def _expired(self, record: _Interaction, seconds: float | None) -> bool:
        return seconds is not None and self._clock() - record.created > seconds

    async def _callback(self, request: web.Request, raw_id: str, token: str) -> web.Response:
        """POST /interactions/{id}/{token}/callback: the first answer to an interaction."""
        record = self._interactions.get(int(raw_id)) if raw_id.isdigit() else None
        if (
            record is None
            or record.token != token
            or self._expired(record, self.interaction_deadline)
        ):
            return _error(404, "Unknown interaction", 10062)
        body, uploads = await self._read_body(request, record.channel_id)
        if record.response_type is not None:
            return _error(400, "Interaction has already been acknowledged.", 40060)
        kind = body.get("type")
        data: Json = body.get("data") or {}
        if kind not in (CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE, MODAL):
            choices = _field_error("BASE_TYPE_CHOICES", "Value must be one of {4, 5, 9}.")
            return _invalid_form({"type": choices})
        if record.channel_id not in self._channels:
            return _error(404, "Unknown Channel", 10003)
        if kind == CHANNEL_MESSAGE_WITH_SOURCE:
            if errors := self._content_errors(data):
                return _invalid_form({"data": errors})
            if _is_empty(data, uploads):
                return _error(400, "Cannot send an empty message", 50006)
        self.interaction_responses[str(record.id)].append(body)
        record.response_type = int(kind)
        resource: Json = {"type": kind}
        answer: Json = {"id": str(record.id), "type": APPLICATION_COMMAND}
        if kind != MODAL:
            loading = kind == DEFERRED_CHANNEL_MESSAGE
            message = await self._interaction_post(record, data, uploads, loading=loading)
            record.original_id = int(message["id"])
            answer.update(
                response_message_id=message["id"],
                response_message_loading=loading,
                response_message_ephemeral=bool(message["flags"] & EPHEMERAL),
            )
            if not loading:  # Discord gives the message for type 4 (and 7) only
                resource["message"] = message
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return _json({"interaction": answer, "resource": resource})

    async def _followup(self, request: web.Request, record: _Interaction) -> web.Response:
        """POST /webhooks/{application}/{token}: a followup message. The first one after a
        deferral fills the loading original instead, which keeps the deferral's ephemerality."""
        if record.response_type == MODAL:
            return _error(404, "Unknown Webhook", 10015)
        if record.channel_id not in self._channels:
            return _error(404, "Unknown Channel", 10003)
        body, uploads = await self._read_body(request, record.channel_id)
        if errors := self._content_errors(body):
            return _invalid_form(errors)
        if _is_empty(body, uploads):
            return _error(400, "Cannot send an empty message", 50006)
        original = (
            self._interaction_message(record, record.original_id)
            if record.original_id is not None
            else None
        )
        if original is not None and original["flags"] & LOADING:
            message, files = self._edited(record, int(original["id"]), body, uploads, fill=True)
            await self._store_edit(record, message, files, body)
        else:
            message = await self._interaction_post(record, body, uploads, followup=True)
        entry: Json = {"type": "followup", "message_id": message["id"], "data": body}
        self.interaction_responses[str(record.id)].append(entry)
        if request.query.get("wait", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return _json(message)

    async def _webhook_message(
        self, request: web.Request, record: _Interaction, raw_id: str
    ) -> web.Response:
        """GET, PATCH and DELETE /webhooks/{application}/{token}/messages/{id | @original}."""
        message_id = record.original_id if raw_id == "@original" else None
        if raw_id.isdigit() and int(raw_id) in record.message_ids:
            message_id = int(raw_id)
        current = None if message_id is None else self._interaction_message(record, message_id)
        if message_id is None or current is None:
            return _error(404, "Unknown Message", 10008)
        if request.method == "GET":
            return _json(current)
        if request.method == "DELETE":
            await self._delete_interaction_message(record, message_id)
            return web.Response(status=204)
        if request.method != "PATCH":
            return _error(405, "405: Method Not Allowed", 0)
        body, uploads = await self._read_body(request, record.channel_id)
        if errors := self._content_errors(body):
            return _invalid_form(errors)
        edited, files = self._edited(record, message_id, body, uploads)
        if _is_empty(edited, files):
            return _error(400, "Cannot send an empty message", 50006)
        await self._store_edit(record, edited, files, body)
        entry: Json = {"type": "edit", "message_id": edited["id"], "data": body}
        self.interaction_responses[str(record.id)].append(entry)
        return _json(edited)

    def _interaction_message(self, record: _Interaction, message_id: int) -> Json | None:
        """The current payload of one of an interaction's messages, None once deleted."""
        if message_id in record.ephemeral_messages:
            return record.ephemeral_messages[message_id]
        found = self._find_message(record.channel_id, str(message_id))
        return None if found is None else found.payload

    def _interaction_fields(self, record: _Interaction, flags: int, *, followup: bool) -> Json:
        """What a message answering an interaction carries beyond a plain bot message."""
        metadata: Json = {
            "id": str(record.id),
            "type": APPLICATION_COMMAND,
            "user": record.user,
            "authorizing_integration_owners": {str(GUILD_INSTALL): str(self.guild_id)},
        }
        if followup and record.original_id is not None:
            metadata["original_response_message_id"] = str(record.original_id)
        return {
            "type": CHAT_INPUT_COMMAND_MESSAGE,
            "flags": flags,
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": metadata,
            "interaction": {  # deprecated by Discord, still sent
                "id": str(record.id),
                "type": APPLICATION_COMMAND,
                "name": record.command,
                "user": record.user,
                "member": self._member(record.user, partial=True),
            },
        }

    async def _interaction_post(
        self,
        record: _Interaction,
        body: Json,
        uploads: list[Attachment],
        *,
        loading: bool = False,
        followup: bool = False,
    ) -> Json:
        """A new message answering an interaction: stored and dispatched like any bot post,
        or, with flag 64, ephemeral: kept on the interaction only (bots never see those)."""
        requested = int(body.get("flags") or 0)
        flags = requested & (SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | EPHEMERAL)
        flags |= LOADING if loading else 0
        fields = self._interaction_fields(record, flags, followup=followup)
        content = "" if loading else str(body.get("content") or "")
        if flags & EPHEMERAL:
            payload = self._message_payload(
                record.channel_id, self.bot_user, content, uploads, request=body
            )
            payload.update(fields)
            record.ephemeral_messages[int(payload["id"])] = payload
        else:
            message = await self._create_message(
                record.channel_id, self.bot_user, content, uploads, request=body, extra=fields
            )
            payload = message.payload
        record.message_ids.append(int(payload["id"]))
        return payload

    def _edited(
        self,
        record: _Interaction,
        message_id: int,
        body: Json,
        uploads: list[Attachment],
        *,
        fill: bool = False,
    ) -> tuple[Json, tuple[Attachment, ...]]:
        """One of an interaction's messages as ``body`` would leave it, and its files. With
        ``fill`` a followup's body replaces the loading original of a deferral."""
        old = self._interaction_message(record, message_id)
        if old is None:
            raise KeyError(f"no message {message_id} of interaction {record.id}")
        posted = self._find_message(record.channel_id, str(message_id))
        new: Json = {**old}
        if fill or "content" in body:
            new["content"] = str(body.get("content") or "")
        if fill or "embeds" in body:
            new["embeds"] = [{**e, "type": e.get("type", "rich")} for e in body.get("embeds") or []]
        kept: list[Json] = list(old["attachments"])
        files = list(posted.attachments) if posted is not None else []
        if fill or "attachments" in body:
            keep = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = [a for a in kept if a["id"] in keep]
            files = [a for a in files if str(a.id) in keep]
        new["attachments"] = kept + [
            self._attachment_payload(record.channel_id, a) for a in uploads
        ]
        settable = SUPPRESS_EMBEDS | (SUPPRESS_NOTIFICATIONS if fill else 0)
        flags = int(old["flags"]) & ~LOADING
        if fill or "flags" in body:
            flags = (flags & ~settable) | (int(body.get("flags") or 0) & settable)
        new["flags"] = flags
        request = body if fill or "allowed_mentions" in body or posted is None else posted.request
        mentions, mention_roles, everyone = self._mentions(new["content"], request, None)
        new.update(mentions=mentions, mention_roles=mention_roles, mention_everyone=everyone)
        if fill:
            new["tts"] = bool(body.get("tts", False))
        else:
            new["edited_timestamp"] = _iso(self._clock())
        return new, (*files, *uploads)

    async def _store_edit(
        self, record: _Interaction, new: Json, files: tuple[Attachment, ...], body: Json
    ) -> None:
        """Keep an edited interaction message; MESSAGE_UPDATE follows unless it is ephemeral."""
        message_id = int(new["id"])
        if message_id in record.ephemeral_messages:
            record.ephemeral_messages[message_id] = new
            return
        stored = self._messages[record.channel_id]
        index = next(i for i, m in enumerate(stored) if m.id == message_id)
        stored[index] = dataclasses.replace(
            stored[index], content=new["content"], attachments=files, payload=new, request=body
        )
        member = self._member(self.bot_user, partial=True)
        event = {**new, "guild_id": str(self.guild_id), "member": member}
        await self._dispatch("MESSAGE_UPDATE", event)

    async def _delete_interaction_message(self, record: _Interaction, message_id: int) -> None:
        if record.ephemeral_messages.pop(message_id, None) is not None:
            return
        stored = self._messages.get(record.channel_id, [])
        self._messages[record.channel_id] = [m for m in stored if m.id != message_id]
        event = {
            "id": str(message_id),
            "channel_id": str(record.channel_id),
            "guild_id": str(self.guild_id),
        }
        await self._dispatch("MESSAGE_DELETE", event)

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        key = (int(info["channel"]), int(info["id"]), info["filename"])
        attachment = self._files.get(key)
        if attachment is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=attachment.data, content_type=attachment.content_type)
