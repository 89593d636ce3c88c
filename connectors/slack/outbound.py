"""Posting to Slack: a message as mrkdwn parts, each one section block, paced per channel.

One rule for length: a message holds at most :data:`~connectors.slack.mrkdwn.PART_LIMIT`
characters of mrkdwn (Slack's limit on a section's text), in one section block whose
``text`` (what notifications show) is the same; a longer text is several messages, posted
one after another, code blocks closed and reopened at each cut, never cut short. That
keeps every message far under Slack's 50 blocks and 40,000 characters.

Mentions never ping: all text is escaped (:mod:`.mrkdwn`) and ``link_names`` is never
set; an alert starts with ``<@U…>`` of each user it wakes (its ``mentions``, else the
configured ``on_call``). Choices are buttons under the first part (:mod:`.blocks`); an
edit replaces the message's text and drops its buttons. Files are posted as their text
in code blocks, the first :data:`FILE_PARTS` messages of each (a longer one says how much
is left out), images by name only: uploads are not used.

A thread is named by its root's ts. A thread Fleetwarden did not open or see is looked
up once (``conversations.replies``) before posting into it: a ts naming no thread is
refused, never posted to the channel instead.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Any, Final

from connectors.base import (
    Attachment,
    EventId,
    OutboundMessage,
    RoomId,
    SendResult,
    ThreadId,
)
from connectors.errors import ConnectorError
from connectors.slack.blocks import message_blocks, section
from connectors.slack.config import SlackConfig
from connectors.slack.mrkdwn import PART_LIMIT, escape, mention, parts
from connectors.slack.pacing import Pacer, Post, SlackRefused
from connectors.slack.web import SlackWeb

log = logging.getLogger(__name__)

FILE_PARTS: Final = 3
"""Messages of a file's text posted at most; the rest is said to be left out."""
_TS: Final = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")
_KNOWN: Final = 4096


def is_ts(value: str) -> bool:
    """Whether ``value`` has the shape of a Slack message ts."""
    return bool(_TS.fullmatch(value))


def render(text: str) -> dict[str, Any]:
    """A message's ``text`` and ``blocks`` for mrkdwn ``text``."""
    return {"text": text, "blocks": message_blocks(text)}


class Outbound:
    """Sends, edits and threads for one connector."""

    def __init__(self, web: SlackWeb, pacer: Pacer, config: SlackConfig) -> None:
        self._web = web
        self._pacer = pacer
        self._config = config
        self._threads: OrderedDict[tuple[str, str], bool] = OrderedDict()

    def known_thread(self, channel: str, ts: str) -> None:
        """Note that ``ts`` roots a thread (one opened, or a person's message seen)."""
        self._remember(channel, ts, True)

    async def send(self, message: OutboundMessage) -> SendResult:
        """Post ``message``: its parts in order, then its files; the ts of each message."""
        channel = message.room
        thread = message.thread_id
        if thread is not None:
            await self._check_thread(channel, thread)
        texts = parts(message.markdown)
        head = self._pings(message)
        if head:
            texts = _lead(head, texts)
        texts += _files(message.files, message.images)
        if not texts:
            return SendResult(event_ids=())
        choices = message.choices
        single = len(texts) == 1 and not choices and not head
        posts = []
        for index, text in enumerate(texts):
            args: dict[str, Any] = {
                "channel": channel,
                "text": text,
                "blocks": message_blocks(text, choices if index == 0 else ()),
                "unfurl_links": False,
                "unfurl_media": False,
            }
            if thread is not None:
                args["thread_ts"] = thread
            posts.append(Post(channel, args, text, mergeable=single))
        waiting = [self._pacer.submit(post) for post in posts]  # queued together, in order
        ids: list[EventId] = []
        for future in waiting:
            ids.append(EventId(await future))
        return SendResult(event_ids=tuple(dict.fromkeys(ids)))

    async def edit(self, room: RoomId, event_id: EventId, markdown: str) -> None:
        """Replace message ``event_id``'s text with ``markdown`` (its first part) and drop
        its buttons."""
        if not is_ts(event_id):
            raise ConnectorError(f"slack: cannot edit {event_id!r}: not a message ts")
        texts = parts(markdown)
        if not texts:
            raise ConnectorError(f"slack: cannot edit message {event_id} to an empty text")
        text = texts[0]
        await self._pacer.edit(room, event_id, {"text": text, "blocks": [section(text)]})

    async def open_thread(self, room: RoomId, first_message: str, topic: str) -> ThreadId:
        """Post ``first_message`` in ``room``: its ts names the thread; a long first
        message goes on inside the thread."""
        texts = parts(first_message) or [f"*{escape(topic)}*"]
        root = await self._pacer.submit(
            Post(room, {"channel": room, **render(texts[0])}, texts[0], mergeable=False)
        )
        self.known_thread(room, root)
        thread = ThreadId(root)
        for text in texts[1:]:
            args = {"channel": room, "thread_ts": thread, **render(text)}
            await self._pacer.submit(Post(room, args, text, mergeable=False))
        log.info("slack: opened thread %s for %s", thread, topic)
        return thread

    def _pings(self, message: OutboundMessage) -> str:
        if not (message.alert or message.mentions):
            return ""
        named = [user for user in message.mentions if mention(user)]
        users = list(dict.fromkeys(named or self._config.on_call))
        return " ".join(m for user in users if (m := mention(user)))

    async def _check_thread(self, channel: str, thread: str) -> None:
        """Refuse a thread that does not exist, asking Slack once per thread."""
        if not is_ts(thread):
            raise ConnectorError(f"slack: {thread!r} names no thread (not a message ts)")
        known = self._threads.get((channel, thread))
        if known is None:
            try:
                answer = await self._pacer.patient(  # its tier's limit waited out, not raised
                    "conversations.replies", {"channel": channel, "ts": thread, "limit": 1}
                )
            except SlackRefused as exc:
                if exc.error not in ("thread_not_found", "message_not_found"):
                    raise
                known = False
            else:
                found = answer.get("messages")
                known = isinstance(found, list) and any(
                    isinstance(m, dict) and m.get("ts") == thread for m in found
                )
            self._remember(channel, thread, known)
        if not known:
            raise ConnectorError(f"slack: there is no thread {thread} in channel {channel}")

    def _remember(self, channel: str, ts: str, known: bool) -> None:
        self._threads[(channel, ts)] = known
        self._threads.move_to_end((channel, ts))
        while len(self._threads) > _KNOWN:
            self._threads.popitem(last=False)


def _lead(head: str, texts: list[str]) -> list[str]:
    """The pings lead the first part, or go first alone when it is full."""
    first = texts[0] if texts else ""
    if len(head) + 1 + len(first) <= PART_LIMIT:
        return [f"{head} {first}".rstrip(), *texts[1:]]
    return [head, *texts]


def _files(files: tuple[Attachment, ...], images: tuple[Any, ...]) -> list[str]:
    """Each file's text as code-block messages (the first :data:`FILE_PARTS`), each image
    by its name."""
    out: list[str] = []
    for each in files:
        text = each.data.decode("utf-8", errors="replace")
        runs = [len(run) for run in re.findall("`+", text)]
        fence = "`" * max(3, max(runs, default=0) + 1)
        pieces = parts(f"{each.name}:\n{fence}\n{text}\n{fence}")
        out += pieces[:FILE_PARTS]
        if len(pieces) > FILE_PARTS:
            out.append(
                f"_{escape(each.name)}: {len(pieces) - FILE_PARTS} more part(s) not posted "
                "here (too long for chat)_"
            )
    for image in images:
        out.append(
            f"_(an image, {escape(getattr(image, 'name', 'image'))}, is not shown on Slack)_"
        )
    return out
