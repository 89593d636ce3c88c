"""What the fake Discord stores: uploaded files, messages, interactions and the gateway
session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Json = dict[str, Any]


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
