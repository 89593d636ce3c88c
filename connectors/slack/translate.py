"""Which Slack events are for us, each as an :class:`InboundMessage`.

Pure functions over the Events API's payloads (the same whether they came over Socket Mode
or HTTP). Only what a person did in the control channel or one of its threads counts:
messages other apps or the bot itself posted, and system messages (joins, topic changes,
deletions), are not. A leading mention of the bot (``<@U…>``) is cut off and marks the
message as addressed; the sender's user groups become the ACL's ``usergroup:S…`` groups.

Ids: a person's message is known by its ``ts``, as Slack names it everywhere (an edit, a
reaction, a thread): one message comes once whether it arrived as ``message`` or as
``app_mention`` (Slack sends both for a mention, with two event ids), and an edit names the
message it replaces by the id its command was claimed under. An edit's own id is
``<ts>:edit:<edited ts>``. A reaction, a Stop click on an agent session: the envelope's
``event_id``, which a redelivery keeps. A button click: ``action:<action_ts>:<user>``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from connectors.base import EventId, InboundMessage, RoomId, ThreadId, UserId

CONNECTOR: Final = "slack"

PERSON_SUBTYPES: Final = frozenset({None, "thread_broadcast", "file_share", "me_message"})
"""Message subtypes a person typed; every other subtype is a system message, another
app's, an edit or a deletion (handled apart, or not at all)."""

SHORTCODES: Final[Mapping[str, str]] = {
    # Slack names a reaction by its shortcode; the approval code reads the emoji itself.
    # Those that answer an approval or a spend ask (bot/approvals/render.py):
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "ballot_box_with_check": "☑️",
    "+1": "👍",
    "thumbsup": "👍",
    "ok": "🆗",
    "large_green_circle": "🟢",
    "x": "❌",
    "heavy_multiplication_x": "✖️",
    "negative_squared_cross_mark": "❎",
    "no_entry_sign": "🚫",
    "-1": "👎",
    "thumbsdown": "👎",
    "no_entry": "⛔",
    "octagonal_sign": "🛑",
    "red_circle": "🔴",
    "repeat": "🔁",
    "repeat_one": "🔂",
    "infinity": "♾️",
    "recycle": "♻️",
}
"""Slack's shortcodes for the reactions that mean something here, as the emoji (a skin
tone, ``::skin-tone-2``, is dropped first). Any other reaction comes in as ``:name:``."""

Payload = Mapping[str, Any]


def emoji(name: str) -> str:
    """The emoji a Slack reaction name stands for (``white_check_mark`` → ✅); one that
    means nothing here as ``:name:``."""
    base = name.split("::", 1)[0]
    return SHORTCODES.get(base, f":{base}:")


def slack_time(ts: object) -> datetime:
    """A Slack ``ts`` (``"1712345678.000200"``) as an aware time; now, if it is none."""
    try:
        return datetime.fromtimestamp(float(str(ts)), UTC)
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC)


def mention_of(bot_user: str) -> re.Pattern[str]:
    """A mention of the bot at the start of a message (``<@U…>``, ``<@U…|name>``)."""
    return re.compile(rf"\s*<@{re.escape(bot_user)}(\|[^>]*)?>[\s:,]*")


class Translator:
    """Turns payloads into messages for one control channel, once the bot's id is known."""

    def __init__(self, channel: str, bot_user: str) -> None:
        self.channel = channel
        self.bot_user = bot_user
        self._mention = mention_of(bot_user)

    def _ours(self, event: Payload) -> bool:
        """Whether ``event`` is the bot's own doing, another app's, or no person's."""
        user = event.get("user")
        return not isinstance(user, str) or user == self.bot_user or bool(event.get("bot_id"))

    def message(self, event: Payload, groups: tuple[str, ...] = ()) -> InboundMessage | None:
        """A ``message`` or ``app_mention`` event as a message, or ``None`` if it is not a
        person's message in the control channel (or one of its threads)."""
        if event.get("channel") != self.channel or event.get("subtype") not in PERSON_SUBTYPES:
            return None
        if self._ours(event):
            return None
        ts, text = event.get("ts"), event.get("text")
        if not isinstance(ts, str) or not isinstance(text, str):
            return None
        return self._inbound(event, ts, text, groups)

    def edit(self, event: Payload, groups: tuple[str, ...] = ()) -> InboundMessage | None:
        """A ``message_changed`` event as the edited message that ``replaces`` the first,
        or ``None`` when it is no edit a person made (Slack also changes a message to add
        a link's preview, or when a thread gets replies: it then has no new ``edited``)."""
        if event.get("channel") != self.channel or event.get("subtype") != "message_changed":
            return None
        message = event.get("message")
        before = event.get("previous_message")
        if not isinstance(message, Mapping) or self._ours(message):
            return None
        edited = message.get("edited")
        ts, text = message.get("ts"), message.get("text")
        if not isinstance(edited, Mapping) or not isinstance(ts, str) or not isinstance(text, str):
            return None
        if isinstance(before, Mapping) and before.get("text") == text:
            return None  # an unfurl or a reply count changed, not the words
        edited_ts = str(edited.get("ts", ""))
        inbound = self._inbound(message, ts, text, groups, when=edited_ts)
        return _replace(inbound, event_id=f"{ts}:edit:{edited_ts}", replaces=ts)

    def reaction(
        self,
        event: Payload,
        event_id: str | None,
        thread: str | None,
        groups: tuple[str, ...] = (),
    ) -> InboundMessage | None:
        """A ``reaction_added`` to a message of the control channel (``thread``: the thread
        it is in, where known) as a message whose text is the emoji."""
        item = event.get("item")
        if event.get("type") != "reaction_added" or not isinstance(item, Mapping):
            return None
        if item.get("type") != "message" or item.get("channel") != self.channel:
            return None
        name, ts, user = event.get("reaction"), item.get("ts"), event.get("user")
        if not isinstance(name, str) or not isinstance(ts, str) or not isinstance(user, str):
            return None
        if user == self.bot_user:
            return None
        return InboundMessage(
            connector=CONNECTOR,
            sender=UserId(user),
            text=emoji(name),
            room=RoomId(self.channel),
            timestamp=slack_time(event.get("event_ts")),
            event_id=EventId(event_id or f"{ts}:reaction:{user}:{name}"),
            thread_id=None if thread is None or thread == ts else ThreadId(thread),
            groups=groups,
            reacts_to=EventId(ts),
        )

    def session_stopped(
        self, event: Payload, event_id: str | None, agent: str, groups: tuple[str, ...] = ()
    ) -> InboundMessage | None:
        """Slack's Stop on the agent session of a thread (whose topic is ``agent``) as the
        command ``stop <agent>`` in that thread, from the person who clicked it."""
        user, thread = event.get("user"), event.get("thread_ts")
        if event.get("channel") != self.channel or not isinstance(user, str):
            return None
        if not isinstance(thread, str) or user == self.bot_user:
            return None
        return InboundMessage(
            connector=CONNECTOR,
            sender=UserId(user),
            text=f"stop {agent}",
            room=RoomId(self.channel),
            timestamp=slack_time(event.get("event_ts")),
            event_id=EventId(event_id or f"stopped:{thread}:{event.get('event_ts')}"),
            thread_id=ThreadId(thread),
            addressed=True,
            groups=groups,
        )

    def _inbound(
        self,
        event: Payload,
        ts: str,
        text: str,
        groups: tuple[str, ...],
        when: str | None = None,
    ) -> InboundMessage:
        addressed = False
        if found := self._mention.match(text):
            text, addressed = text[found.end() :], True
        thread = event.get("thread_ts")
        return InboundMessage(
            connector=CONNECTOR,
            sender=UserId(str(event.get("user"))),
            text=unescape(text),
            room=RoomId(self.channel),
            timestamp=slack_time(when or ts),
            event_id=EventId(ts),
            thread_id=ThreadId(thread) if isinstance(thread, str) and thread != ts else None,
            addressed=addressed,
            groups=groups,
        )


def unescape(text: str) -> str:
    """What a person typed: Slack sends ``&``, ``<`` and ``>`` escaped."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _replace(inbound: InboundMessage, *, event_id: str, replaces: str) -> InboundMessage:
    return dataclasses.replace(inbound, event_id=EventId(event_id), replaces=EventId(replaces))
