"""TypedDict shapes of the Matrix JSON this connector writes: event contents and the session file.

Shapes we only read (sync events) stay plain dicts: the server decides what is in them,
so :mod:`connectors.matrix.inbound.translate` checks every field it uses. Keys with a dot in
them (``m.relates_to``) need TypedDict's functional form.
"""

from __future__ import annotations

from typing import Any, TypedDict

JsonDict = dict[str, Any]
"""A decoded JSON object whose shape is checked field by field where it is read."""


class InReplyTo(TypedDict):
    event_id: str


ReplyRelation = TypedDict("ReplyRelation", {"m.in_reply_to": InReplyTo})
ThreadRelation = TypedDict(
    "ThreadRelation",
    {"rel_type": str, "event_id": str, "is_falling_back": bool, "m.in_reply_to": InReplyTo},
)
Relation = ReplyRelation | ThreadRelation


class Mentions(TypedDict, total=False):
    """Intentional mentions (spec v1.7): the users a message is meant to notify."""

    user_ids: list[str]


NoticeContent = TypedDict(
    "NoticeContent",
    {
        "msgtype": str,
        "body": str,
        "format": str,
        "formatted_body": str,
        "m.relates_to": Relation,
        "m.mentions": Mentions,
    },
    total=False,
)
"""A text message the bot posts: an ``m.notice``, or an alert's ``m.text``."""


class ImageInfo(TypedDict):
    mimetype: str
    size: int
    w: int
    h: int


ImageContent = TypedDict(
    "ImageContent",
    {
        "msgtype": str,
        "body": str,
        "url": str,
        "file": dict[str, Any],
        "info": ImageInfo,
        "m.relates_to": Relation,
    },
    total=False,
)


class FileInfo(TypedDict):
    mimetype: str
    size: int


FileContent = TypedDict(
    "FileContent",
    {
        "msgtype": str,
        "body": str,
        "filename": str,
        "url": str,
        "file": dict[str, Any],
        "info": FileInfo,
        "m.relates_to": Relation,
    },
    total=False,
)
"""An ``m.file``: a text file the bot attaches (a long diff)."""


class SessionFile(TypedDict):
    """``<state_dir>/matrix/session.json``: a password login kept for reuse (mode 0600)."""

    homeserver: str
    user_id: str
    device_id: str
    access_token: str
