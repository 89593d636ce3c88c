"""Posting to Discord: parts of at most 2000 characters, threads found or made again.

Every message is Discord markdown (:func:`connectors.markdown_discord.to_discord`) cut on line
boundaries with code fences closed and reopened at each cut. A fleet notice (one with a
``tone``) that fits is an embed instead, its colour saying how it went. Mentions never ping
(``allowed_mentions`` is empty on the client) — except an alert's: it starts with
``<@id>`` of each user it wakes (its ``mentions``, else the configured ``on_call``), and only
those users are allowed to be pinged (an embed never pings, so the mention is content).
Images and files (a long diff) go as attachments with the last part, ten at most to a
message as Discord allows: more follow in messages of their own. The first part answers
the command it replies to, when that is in the same channel.

Threads: discord.py drops archived threads from its cache, so a thread that is not
cached live is fetched and, if archived, unarchived before posting. A thread deleted in
Discord is made again under the control channel for the same topic, and the ledger's
mapping is moved to it.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections import OrderedDict
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from connectors.base import (
    Attachment,
    EventId,
    OutboundMessage,
    RoomId,
    SendResult,
    ThreadId,
    Tone,
)
from connectors.discord.config import DiscordConfig
from connectors.errors import ConnectorError, RateLimited
from connectors.markdown import split_markdown
from connectors.markdown_discord import to_discord

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECTOR = "discord"
MESSAGE_LIMIT = 2000
"""Discord's limit on a message's content, in characters."""
EMBED_LIMIT = 4096
"""Discord's limit on an embed's description, in characters."""
THREAD_NAME_LIMIT = 100
FILES_PER_MESSAGE = 10
"""Discord's limit on attachments to one message."""
COLOURS: dict[Tone, int] = {
    "info": 0x5865F2,  # Discord's blurple
    "ok": 0x57F287,
    "warning": 0xFEE75C,
    "error": 0xED4245,
}
_REMEMBERED = 4096
"""How many recent messages' channels are kept, to decide where a reply may quote and where
a message to edit is."""


class ThreadBook(Protocol):
    """The ledger's topic ↔ thread mapping, as far as posting needs it."""

    async def topic_for_thread(self, connector: str, room: str, thread_id: str) -> str | None: ...

    async def bind_thread(self, connector: str, room: str, topic: str, thread_id: str) -> None: ...


def parts(markdown: str) -> list[str]:
    """``markdown`` as Discord messages: Discord's dialect, fence-balanced, ≤ 2000 each."""
    return split_markdown(to_discord(markdown), MESSAGE_LIMIT)


class Outbound:
    """Sends for a logged-in :class:`discord.Client`."""

    def __init__(self, client: discord.Client, config: DiscordConfig, threads: ThreadBook) -> None:
        self._client = client
        self._config = config
        self._threads = threads
        self._channels: OrderedDict[int, int] = OrderedDict()

    def remember(self, message_id: int, channel_id: int) -> None:
        """Note where a recent message (an inbound one, or one the bot posted) is, so a reply
        quotes it only there and an edit finds it."""
        self._channels[message_id] = channel_id
        if len(self._channels) > _REMEMBERED:
            self._channels.popitem(last=False)

    async def send(self, message: OutboundMessage) -> SendResult:
        """Post ``message`` where it says: the thread (found, unarchived or made again) or
        the channel."""
        embed = _embed(message)
        texts = [] if embed is not None else parts(message.markdown)
        if not texts and not message.images and not message.files and embed is None:
            return SendResult(event_ids=())
        target = await self._target(message.room, message.thread_id)
        try:
            ids = await self._post(target, texts, message, embed)
        except discord.NotFound:
            if message.thread_id is None:
                raise ConnectorError(f"discord: channel {message.room} no longer exists") from None
            # Deleted while still cached: make it again and post there.
            target = await self._reopen(message.room, message.thread_id)
            ids = await self._post(target, texts, message, embed)
        return SendResult(event_ids=tuple(EventId(str(i)) for i in ids))

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None
    ) -> None:
        """Replace the content of the bot's message ``event_id`` with ``markdown`` (its first
        2000-character part; an embed it had is removed). It is looked for where the bot
        posted it, if that is remembered, else in ``thread``, else in ``room``."""
        texts = parts(markdown)
        if not event_id.isdigit():
            raise ConnectorError(f"discord: cannot edit {event_id!r}: not a message id")
        if not texts:
            raise ConnectorError(f"discord: cannot edit message {event_id} to an empty text")
        channel = self._channels.get(int(event_id)) or int(thread or room)
        message = self._client.get_partial_messageable(channel).get_partial_message(int(event_id))
        try:
            await _call(message.edit(content=texts[0], embeds=[]))
        except discord.NotFound:
            raise ConnectorError(
                f"discord: there is no message {event_id} in channel {channel} to edit"
            ) from None

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        """Post ``first_message`` in ``room`` and open ``topic``'s thread from it; a long
        first message continues inside the thread."""
        channel = await self._channel(int(room))
        texts = parts(first_message) or [f"**{topic}**"]
        root = await _call(channel.send(texts[0]))
        self.remember(root.id, channel.id)
        thread = await _call(
            root.create_thread(
                name=topic[:THREAD_NAME_LIMIT],
                auto_archive_duration=self._config.thread_auto_archive_minutes,
            )
        )
        for text in texts[1:]:
            self.remember((await _call(thread.send(text))).id, thread.id)
        log.info("discord: opened thread %s for %s", thread.id, topic)
        return ThreadId(str(thread.id))

    async def say_typing(self, channel: str, on: bool) -> None:
        """Show the bot typing in ``channel`` (a channel or a thread) for Discord's ~10 s;
        Discord has no "stopped": the notice ends with the next message or lapses."""
        if on:
            await _call(self._client.get_partial_messageable(int(channel)).typing())

    def _pinged(self, message: OutboundMessage) -> list[int]:
        """The users ``message`` pings: an alert's mentions, else the on-call users."""
        if not (message.alert or message.mentions):
            return []
        named = [int(user) for user in message.mentions if user.isdigit()]
        return list(dict.fromkeys(named or self._config.on_call))

    async def _post(
        self,
        target: discord.abc.Messageable,
        texts: list[str],
        message: OutboundMessage,
        embed: discord.Embed | None,
    ) -> list[int]:
        pinged = self._pinged(message)
        ping: dict[str, Any] = {}
        head = ""
        if pinged:
            head = " ".join(f"<@{user}>" for user in pinged)
            users = [discord.Object(id=user) for user in pinged]
            allowed = discord.AllowedMentions(
                everyone=False, roles=False, users=users, replied_user=False
            )
            ping = {"allowed_mentions": allowed}
        if embed is not None:
            sent = await _call(target.send(head or None, embed=embed, **ping))
            self.remember(sent.id, sent.channel.id)
            return [sent.id]
        if head:  # the pings lead the first part, or go first alone when it is full
            first = texts[0] if texts else ""
            fits = len(head) + 1 + len(first) <= MESSAGE_LIMIT
            texts = [f"{head} {first}".rstrip(), *texts[1:]] if fits else [head, *texts]
        reference = self._reference(message.in_reply_to, target)
        ids: list[int] = []
        last = len(texts) - 1
        attached = _attachments(message)
        for index, text in enumerate(texts or [""]):
            files = _files(attached[:FILES_PER_MESSAGE]) if index >= last else []
            quote: dict[str, Any] = {"reference": reference} if index == 0 and reference else {}
            if index == 0:
                quote.update(ping)
            sent = await _call(
                target.send(text or None, files=files, mention_author=False, **quote)
            )
            self.remember(sent.id, sent.channel.id)
            ids.append(sent.id)
        for start in range(FILES_PER_MESSAGE, len(attached), FILES_PER_MESSAGE):
            group = _files(attached[start : start + FILES_PER_MESSAGE])
            sent = await _call(target.send(None, files=group, mention_author=False))
            self.remember(sent.id, sent.channel.id)
            ids.append(sent.id)
        return ids

    def _reference(
        self, reply_to: EventId | None, target: discord.abc.Messageable
    ) -> discord.MessageReference | None:
        if reply_to is None or not reply_to.isdigit():
            return None
        channel = self._channels.get(int(reply_to))
        target_id = getattr(target, "id", None)
        if channel is None or channel != target_id:
            return None
        return discord.MessageReference(
            message_id=int(reply_to), channel_id=channel, fail_if_not_exists=False
        )

    async def _target(self, room: RoomId, thread_id: ThreadId | None) -> discord.abc.Messageable:
        if thread_id is None:
            return await self._channel(int(room))
        cached = self._client.get_channel(int(thread_id))
        if isinstance(cached, discord.Thread) and not cached.archived:
            return cached
        # Not cached live: archived (discord.py drops those), deleted, or not seen yet.
        try:
            fetched = await _call(self._client.fetch_channel(int(thread_id)))
        except discord.NotFound:
            return await self._reopen(room, thread_id)
        if not isinstance(fetched, discord.Thread):
            raise ConnectorError(f"discord: {thread_id} is a channel, not a thread")
        if fetched.archived:
            log.info("discord: unarchiving thread %s", fetched.id)
            fetched = await _call(fetched.edit(archived=False))
        return fetched

    async def _reopen(self, room: RoomId, old: ThreadId) -> discord.Thread:
        """Make a deleted thread again for its topic, and move the mapping to it."""
        topic = await self._threads.topic_for_thread(CONNECTOR, room, old)
        if topic is None:
            raise ConnectorError(f"discord: thread {old} was deleted and belongs to no topic")
        log.info("discord: thread %s of %s was deleted; opening a new one", old, topic)
        new = await self.open_thread(
            room, topic, f"**{topic}** — its thread was deleted; it continues here."
        )
        await self._threads.bind_thread(CONNECTOR, room, topic, new)
        thread = self._client.get_channel(int(new))
        if isinstance(thread, discord.Thread):
            return thread
        fetched = await _call(self._client.fetch_channel(int(new)))
        if not isinstance(fetched, discord.Thread):
            raise ConnectorError(f"discord: the new thread {new} is not a thread")
        return fetched

    async def _channel(self, channel_id: int) -> discord.TextChannel:
        channel = self._client.get_channel(channel_id)
        if channel is None:
            try:
                channel = await _call(self._client.fetch_channel(channel_id))
            except discord.NotFound:
                raise ConnectorError(f"discord: channel {channel_id} no longer exists") from None
        if not isinstance(channel, discord.TextChannel):
            raise ConnectorError(f"discord: {channel_id} is not a text channel")
        return channel


def _attachments(message: OutboundMessage) -> list[Path | Attachment]:
    """What ``message`` attaches, in order: its images, then its files."""
    return [*message.images, *message.files]


def _files(attached: list[Path | Attachment]) -> list[discord.File]:
    """discord.py's files for ``attached``: an image from its path, a file from its bytes
    under its own (safe) name. Each is read anew, so a retried send posts them whole."""
    return [
        discord.File(io.BytesIO(each.data), filename=each.name)
        if isinstance(each, Attachment)
        else discord.File(each)
        for each in attached
    ]


def _embed(message: OutboundMessage) -> discord.Embed | None:
    """A fleet notice as an embed coloured by its tone, if it is one and fits."""
    if message.tone is None or message.images or message.files:
        return None
    text = to_discord(message.markdown).strip()
    if not text or len(text) > EMBED_LIMIT:
        return None
    return discord.Embed(description=text, colour=COLOURS[message.tone])


async def _call(awaitable: Awaitable[T]) -> T:
    """Await a discord.py call, turning its refusals into connector errors (a missing
    thread or channel stays :class:`discord.NotFound` for the caller to handle)."""
    try:
        return await awaitable
    except discord.NotFound:
        raise
    except discord.RateLimited as exc:
        raise RateLimited(
            f"discord: rate limited for {exc.retry_after:.0f} s", exc.retry_after
        ) from None
    except discord.Forbidden as exc:
        raise ConnectorError(
            f"discord: not allowed ({exc.text or exc.status}): give the bot's role the "
            "permissions docs/discord.md lists in the control channel"
        ) from None
    except discord.HTTPException as exc:
        raise ConnectorError(f"discord: {exc.status} {exc.text}") from None
