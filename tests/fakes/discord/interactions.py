"""Interactions in the fake Discord: a human uses a slash command (INTERACTION_CREATE), and
the bot's callback, followups and edits arrive through the token-authorized routes.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Mapping

from aiohttp import web

from tests.fakes.discord.messages import Messages
from tests.fakes.discord.records import Attachment, Json, _Interaction
from tests.fakes.discord.wire import (
    APPLICATION_COMMAND,
    ATTACHMENT_SIZE_LIMIT,
    CHANNEL_MESSAGE_WITH_SOURCE,
    CHAT_INPUT,
    CHAT_INPUT_COMMAND_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    EPHEMERAL,
    GUILD_CONTEXT,
    GUILD_INSTALL,
    INTERACTION_TOKEN_LIFETIME,
    LOADING,
    MODAL,
    STRING_OPTION,
    SUPPRESS_EMBEDS,
    SUPPRESS_NOTIFICATIONS,
    _error,
    _field_error,
    _invalid_form,
    _is_empty,
    _iso,
    _json,
)


class Interactions(Messages):
    """Each interaction's record, and its answers: the callback, followups and webhook edits."""

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
