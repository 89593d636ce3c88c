"""Messages in the fake Discord: humans post, edit and delete theirs; the bot posts, edits
and reads history over REST, within Discord's limits, with replies and mentions resolved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from aiohttp import web

from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.records import Attachment, Json, PostedMessage
from tests.fakes.discord.wire import (
    DEFAULT_MESSAGE,
    MAX_CONTENT,
    MAX_EMBEDS,
    PUBLIC_THREAD,
    REPLY_MESSAGE,
    ROLE_MENTION,
    SUPPRESS_EMBEDS,
    SUPPRESS_NOTIFICATIONS,
    USER_MENTION,
    _embed_errors,
    _error,
    _field_error,
    _invalid_form,
    _is_empty,
    _iso,
    _json,
    _multipart,
    _too_long,
)


class Messages(Gateway):
    """Every channel's messages, oldest first, and the routes that post, edit and list them."""

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

    def _find_message(self, channel_id: int, message_id: str) -> PostedMessage | None:
        for message in self._messages.get(channel_id, []):
            if str(message.id) == message_id:
                return message
        return None

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
