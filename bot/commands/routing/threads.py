"""Where an answer goes once a command ran: threads, one per topic (an agent) in a room.

An answer goes where its command was typed: the room's timeline (as a reply to it) or the thread it
was typed in; a reply's images follow its text, in the same place. A
:class:`~bot.commands.routing.request.Reply` naming a topic links to that topic's thread when it was
typed elsewhere, and leaves its ``thread_line`` there; a fresh run (``new_thread``) opens a new
thread with the answer as its root, and the old thread gets a last line pointing to it. The topic ↔
thread mapping lives in the ledger; a new thread replaces the old in it.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.commands.routing.request import Reply
from connectors.base import Connector, InboundMessage, OutboundMessage, RoomId, ThreadId
from connectors.errors import ConnectorError, ThreadsUnsupported
from fleet.ledger.stores.operators.chat import ChatStore

log = logging.getLogger(__name__)


class Threads:
    """Posts answers where they belong, opening and binding topics' threads."""

    def __init__(self, chat: ChatStore) -> None:
        self._chat = chat

    async def deliver(self, connector: Connector, msg: InboundMessage, reply: Reply) -> None:
        """Post ``reply`` where ``msg`` was typed; about a topic, open, link to and note in
        its thread as :class:`~bot.commands.routing.request.Reply` says."""
        if reply.topic is None:
            await self._answer(connector, msg, reply)
            return
        topic = reply.topic
        known = await self._chat.thread_for_topic(msg.connector, msg.room, topic)
        old = ThreadId(known) if known is not None else None
        fresh = reply.new_thread or (reply.open_thread and old is None and msg.thread_id is None)
        opened = await self._open(connector, msg, topic, reply) if fresh else None
        if opened is None:  # answered in place, pointing to the thread it concerns
            link = self._link_line(connector, msg, topic, old) if old != msg.thread_id else ""
            await self._answer(connector, msg, replace(reply, markdown=reply.markdown + link))
            if reply.thread_line and old is not None and old != msg.thread_id:
                await self._aside(connector, msg.room, old, reply.thread_line)
            return
        url = connector.thread_link(msg.room, opened)
        if msg.thread_id is not None:  # typed in a thread: answered there too, with the way
            tail = moved(topic, url) if msg.thread_id == old else link_line(topic, url)
            await self._answer(connector, msg, replace(reply, markdown=reply.markdown + tail))
        if old is not None and old != msg.thread_id:
            await self._aside(connector, msg.room, old, moved(topic, url).strip())

    async def _answer(self, connector: Connector, msg: InboundMessage, reply: Reply) -> None:
        """``reply`` in ``msg``'s room and thread, as a reply to it."""
        await connector.send(
            OutboundMessage(
                room=msg.room,
                markdown=reply.markdown,
                thread_id=msg.thread_id,
                in_reply_to=msg.event_id,
                images=reply.images,
                files=reply.files,
                choices=reply.choices,
            )
        )

    async def _open(
        self, connector: Connector, msg: InboundMessage, topic: str, reply: Reply
    ) -> ThreadId | None:
        """A new thread for ``topic`` in ``msg``'s room, ``reply`` its root, bound in the
        ledger (replacing the old); ``None`` where the medium has no threads."""
        try:
            opened = await connector.open_thread(
                msg.room, topic, reply.markdown + thread_note(topic)
            )
        except ThreadsUnsupported:
            return None
        await self._chat.bind_thread(msg.connector, msg.room, topic, opened)
        if reply.images or reply.files:  # a thread root is text only: the rest follows in it
            await connector.send(
                OutboundMessage(
                    room=msg.room,
                    markdown="",
                    thread_id=opened,
                    images=reply.images,
                    files=reply.files,
                )
            )
        return opened

    def _link_line(
        self, connector: Connector, msg: InboundMessage, topic: str, thread: ThreadId | None
    ) -> str:
        if thread is None:
            return ""
        return link_line(topic, connector.thread_link(msg.room, thread))

    async def _aside(
        self, connector: Connector, room: RoomId, thread: ThreadId, markdown: str
    ) -> None:
        """A line for a topic's thread besides the answer: the answer stands if it fails."""
        try:
            await connector.send(OutboundMessage(room=room, markdown=markdown, thread_id=thread))
        except ConnectorError as exc:
            log.warning("a line for thread %s in %s was not posted: %s", thread, room, exc)


def link_line(agent: str, url: str | None) -> str:
    """The line an answer given outside ``agent``'s thread ends with: the way there."""
    return "" if url is None else f"\n\n→ [{agent}'s thread]({url})"


def moved(agent: str, url: str | None) -> str:
    """The last line of ``agent``'s old thread once it was started again."""
    where = f"[its new thread]({url})" if url is not None else "its new thread, in this room"
    return (
        f"\n\n**{agent}** was started again: what it does now shows in {where}. "
        "Messages here no longer reach it."
    )


def thread_note(agent: str) -> str:
    """The line a thread's first message ends with: what the thread is, and who it listens
    to (a plain message here goes to the agent only from an operator)."""
    return (
        f"\n\n_This thread follows **{agent}**: what it does shows here as it happens, and "
        f"a summary when it ends. A message here goes to {agent} only from an operator; "
        "anyone else's is not forwarded._"
    )
