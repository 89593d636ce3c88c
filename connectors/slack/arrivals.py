"""What comes in from Slack, read once and placed: each event read as ours or not
(:mod:`.translate`; an agent session's Stop as ``stop <agent>`` by its thread's topic in the
ledger), the thread each message is in (a reaction does not say), and each message handed
to the inbox once — Slack sends a mention both as ``message`` and as ``app_mention``."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final, Protocol

from connectors.base import InboundMessage
from connectors.inbox import Inbox
from connectors.slack.outbound import Outbound
from connectors.slack.questions import Questions
from connectors.slack.translate import CONNECTOR, Translator

log = logging.getLogger(__name__)

_SEEN: Final = 2048
"""How many events (and messages' threads) are remembered."""


class ThreadTopics(Protocol):
    """The ledger's thread ↔ topic mapping, as far as the connector needs it."""

    async def topic_for_thread(self, connector: str, room: str, thread_id: str) -> str | None: ...


class Arrivals:
    """The control channel ``channel``'s events, read and handed to ``inbox`` once;
    ``questions``: the open questions, told who each message came from."""

    def __init__(
        self, channel: str, threads: ThreadTopics, inbox: Inbox, questions: Questions
    ) -> None:
        self._channel = channel
        self._threads = threads
        self._inbox = inbox
        self._questions = questions
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._places: OrderedDict[str, str] = OrderedDict()  # message ts -> its thread

    async def translate(
        self,
        translator: Translator,
        event: Mapping[str, Any],
        event_id: str | None,
        outbound: Outbound | None,
    ) -> InboundMessage | None:
        """What ``event`` means, its sender's groups still to be added; a new thread's root
        is told to ``outbound``."""
        kind = event.get("type")
        if kind in ("message", "app_mention"):
            if event.get("subtype") == "message_changed":
                return translator.edit(event)
            inbound = translator.message(event)
            if inbound is not None and inbound.event_id is not None:
                self.note_place(inbound.event_id, inbound.thread_id)
                if outbound is not None and inbound.thread_id is None:
                    outbound.known_thread(inbound.room, inbound.event_id)
            return inbound
        if kind == "reaction_added":
            item = event.get("item")
            ts = item.get("ts") if isinstance(item, Mapping) else None
            thread = self._places.get(ts) if isinstance(ts, str) else None
            return translator.reaction(event, event_id, thread)
        if kind == "agent_session_stopped":
            thread = event.get("thread_ts")
            if event.get("channel") != self._channel or not isinstance(thread, str):
                return None
            agent = await self._threads.topic_for_thread(CONNECTOR, self._channel, thread)
            if agent is None:
                log.info("slack: Stop on the session of thread %s, which is no agent's", thread)
                return None
            return translator.session_stopped(event, event_id, agent)
        return None

    def hand_over(self, inbound: InboundMessage) -> None:
        """Queue ``inbound``, once: Slack sends a mention both as ``message`` and as
        ``app_mention`` (the ledger's claim stops a redelivery after a restart)."""
        key = inbound.event_id
        if key is not None:
            if key in self._seen:
                return
            self._questions.heard(key, inbound.sender)
            self._seen[key] = None
            while len(self._seen) > _SEEN:
                self._seen.popitem(last=False)
        self._inbox.put(inbound)

    def note_place(self, ts: str, thread: str | None) -> None:
        """Remember which thread message ``ts`` is in (a reaction does not say)."""
        self._places[ts] = thread or ts
        while len(self._places) > _SEEN:
            self._places.popitem(last=False)

    def thread_of(self, ts: str) -> str | None:
        """The thread message ``ts`` is in, if it is remembered."""
        return self._places.get(ts)
