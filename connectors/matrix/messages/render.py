"""Event contents the bot posts: markdown notices split to fit, thread relations, PNG images,
files, and alerts that notify.

Routine output is ``m.notice``: the bot convention, and clients never notify for it
(Element's default push rules suppress notices). An alert is ``m.text`` instead; naming
users, its first part starts with a pill for each (a ``matrix.to`` link in
``formatted_body``, the user id in ``body``) and carries intentional mentions
(``m.mentions``, spec v1.7), which is what makes their clients notify them.

Pure functions; :mod:`connectors.matrix.messages.outbound` sends what they build.
"""

from __future__ import annotations

import html
import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from connectors.markdown import MIN_SPLIT_LIMIT, split_markdown, to_html
from connectors.matrix.messages.payloads import (
    FileContent,
    ImageContent,
    NoticeContent,
    Relation,
    ReplyRelation,
    ThreadRelation,
)

SPLIT_LIMIT = 16_000
"""Markdown characters per message: long enough for a screenful, short enough for clients."""

MAX_CONTENT_BYTES = 48_000
"""Budget for one event's content as UTF-8 JSON. Synapse rejects an event whose whole PDU
(content plus signatures, hashes, auth and prev events) exceeds 65,536 bytes; HTML escaping
can make ``formatted_body`` several times longer than the markdown, so each part is measured."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LONGEST_EVENT_ID = "$" + "x" * 254
"""Stands in for an event id not known yet when measuring (the spec caps ids at 255 bytes)."""


def relation(
    thread_id: str | None, in_reply_to: str | None, *, first: bool = True
) -> Relation | None:
    """``m.relates_to`` for a message in ``thread_id`` and/or replying to ``in_reply_to``.

    Only the first part of a split message is a genuine reply; later parts of a thread
    message carry the thread fallback (``is_falling_back``) so thread-unaware clients
    show them as replies to the root. Outside a thread later parts carry no relation.
    """
    reply_to = in_reply_to if first else None
    if thread_id is not None:
        thread: ThreadRelation = {
            "rel_type": "m.thread",
            "event_id": thread_id,
            # The spec: true when m.in_reply_to only points somewhere for old clients.
            "is_falling_back": reply_to is None,
            "m.in_reply_to": {"event_id": reply_to or thread_id},
        }
        return thread
    if reply_to is not None:
        reply: ReplyRelation = {"m.in_reply_to": {"event_id": reply_to}}
        return reply
    return None


def notice(part: str, relates_to: Relation | None, *, html: str | None = None) -> NoticeContent:
    """One ``m.notice`` (the bot convention: other bots do not answer notices) with HTML
    (``html``: ``part`` rendered already)."""
    content: NoticeContent = {
        "msgtype": "m.notice",
        "body": part,
        "format": "org.matrix.custom.html",
        "formatted_body": to_html(part) if html is None else html,
    }
    if relates_to is not None:
        content["m.relates_to"] = relates_to
    return content


def replacement(original: str, markdown: str) -> dict[str, Any]:
    """An ``m.replace`` edit of the bot's message ``original`` to show ``markdown``.

    The new content (``m.new_content``) is a notice formatted as :func:`notice` formats one,
    cut to the first part that fits one event. It carries no relation: the spec keeps the
    original's (its thread) and ignores one in the new content. The fallback ``body`` for
    clients without edits is the new text after ``* ``; the empty ``m.mentions`` keeps an
    edit of an alert from notifying anyone again.
    """
    split = parts(markdown, thread_id=LONGEST_EVENT_ID, max_bytes=MAX_CONTENT_BYTES // 2)
    new = notice(split[0] if split else markdown, None)
    return {
        "msgtype": new["msgtype"],
        "body": f"* {new['body']}",
        "format": new["format"],
        "formatted_body": f"* {new['formatted_body']}",
        "m.new_content": {**new, "m.mentions": {}},
        "m.mentions": {},
        "m.relates_to": {"rel_type": "m.replace", "event_id": original},
    }


def alerting(contents: Sequence[NoticeContent], users: Sequence[str]) -> list[NoticeContent]:
    """``contents`` (one message's parts) as an alert: ``m.text`` throughout, the first
    part mentioning ``users``. Later parts, and an alert naming nobody, mention nobody
    (an empty ``m.mentions``: a user id in the text does not ping either)."""
    alerts: list[NoticeContent] = []
    for index, content in enumerate(contents):
        alert: NoticeContent = {**content, "msgtype": "m.text", "m.mentions": {}}
        if index == 0 and users:
            alert["m.mentions"] = {"user_ids": list(dict.fromkeys(users))}
            alert["body"] = f"{' '.join(users)}: {content['body']}"
            pills = " ".join(pill(user) for user in users)
            alert["formatted_body"] = f"<p>{pills}:</p>\n{content['formatted_body']}"
        alerts.append(alert)
    return alerts


def pill(user: str) -> str:
    """A link to ``user`` that clients show as a pill (a mention)."""
    return f'<a href="https://matrix.to/#/{quote(user, safe="@:")}">{html.escape(user)}</a>'


def content_size(content: Mapping[str, Any]) -> int:
    """Bytes of ``content`` as compact UTF-8 JSON, as it counts against the event limit."""
    return len(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode())


def parts(
    markdown: str,
    *,
    thread_id: str | None = None,
    in_reply_to: str | None = None,
    limit: int = SPLIT_LIMIT,
    max_bytes: int = MAX_CONTENT_BYTES,
) -> list[str]:
    """``markdown`` split so that each part's notice, with its relation, fits ``max_bytes``."""
    return [part for part, _ in _fitted(markdown, thread_id, in_reply_to, limit, max_bytes)]


def notices(
    markdown: str,
    *,
    thread_id: str | None = None,
    in_reply_to: str | None = None,
    limit: int = SPLIT_LIMIT,
    max_bytes: int = MAX_CONTENT_BYTES,
) -> list[NoticeContent]:
    """``markdown`` as notice contents, each within ``max_bytes``; fences stay balanced."""
    split = _fitted(markdown, thread_id, in_reply_to, limit, max_bytes)
    return [
        notice(part, relation(thread_id, in_reply_to, first=index == 0), html=html)
        for index, (part, html) in enumerate(split)
    ]


def _fitted(
    markdown: str, thread_id: str | None, in_reply_to: str | None, limit: int, max_bytes: int
) -> list[tuple[str, str]]:
    """``markdown`` split so that each part's notice fits, with each part's HTML."""
    # Later parts of a thread reply point at the root instead of the reply target, which may
    # be the longer id: measure every part with whichever relation encodes longer.
    first, later = relation(thread_id, in_reply_to), relation(thread_id, in_reply_to, first=False)
    widest = max(first, later, key=lambda each: 0 if each is None else content_size(each))
    return _fit(markdown, limit, max_bytes, widest)


def _fit(
    markdown: str, limit: int, max_bytes: int, relates_to: Relation | None
) -> list[tuple[str, str]]:
    # A part whose encoded content is over budget (heavy HTML escaping, wide characters)
    # is split again with half the limit; each round halves, so this ends.
    fitted: list[tuple[str, str]] = []
    for part in split_markdown(markdown, limit):
        measured = notice(part, relates_to)
        if content_size(measured) <= max_bytes or limit <= MIN_SPLIT_LIMIT:
            fitted.append((part, measured["formatted_body"]))
        else:
            fitted.extend(_fit(part, max(MIN_SPLIT_LIMIT, limit // 2), max_bytes, relates_to))
    return fitted


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; ValueError if ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image (no PNG signature and IHDR chunk)")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def image(
    name: str,
    url: str,
    data: bytes,
    relates_to: Relation | None = None,
    keys: dict[str, Any] | None = None,
) -> ImageContent:
    """An ``m.image`` for an uploaded PNG at ``url`` (an ``mxc://`` URI). With ``keys`` (the
    decryption info of an encrypted upload, for an encrypted room) it is an encrypted file:
    ``file`` holds the URL and keys instead of ``url``."""
    width, height = png_size(data)
    content: ImageContent = {
        "msgtype": "m.image",
        "body": name,
        "info": {"mimetype": "image/png", "size": len(data), "w": width, "h": height},
    }
    if keys is None:
        content["url"] = url
    else:
        content["file"] = {**keys, "url": url}
    if relates_to is not None:
        content["m.relates_to"] = relates_to
    return content


def file(
    name: str,
    mime: str,
    url: str,
    size: int,
    relates_to: Relation | None = None,
    keys: dict[str, Any] | None = None,
) -> FileContent:
    """An ``m.file`` for an uploaded file at ``url`` (an ``mxc://`` URI) of ``size`` bytes.
    With ``keys`` (an encrypted upload's decryption info, for an encrypted room) ``file``
    holds the URL and keys instead of ``url``, as for :func:`image`."""
    content: FileContent = {
        "msgtype": "m.file",
        "body": name,
        "filename": name,
        "info": {"mimetype": mime, "size": size},
    }
    if keys is None:
        content["url"] = url
    else:
        content["file"] = {**keys, "url": url}
    if relates_to is not None:
        content["m.relates_to"] = relates_to
    return content
