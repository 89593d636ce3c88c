"""Discord's wire as the fake speaks it: API constants, error answers in Discord's shapes,
and the rules a message body must pass (limits on content and embeds, multipart uploads).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.discord.records import Attachment, Json

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
