"""Translation of raw Matrix room events into :class:`InboundMessage`, and event predicates.

Pure functions over the event JSON (nio's ``event.source``), so they work the same for
events from ``/sync`` and from ``/messages``. Every field used is type-checked: a
malformed event is skipped, never an exception. A reply is read after its fallback
(:mod:`.replies`); an edit (``m.replace``) becomes a message that ``replaces`` the event it
edits, placed in that event's thread when :class:`ThreadMemory` saw it; a reaction
(``m.reaction``, an ``m.annotation``) becomes one that ``reacts_to`` the event annotated, in
that event's thread (the bot's own messages are remembered for this).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.base import EventId, InboundMessage, RoomId, ThreadId, UserId
from connectors.matrix.messages.payloads import JsonDict
from connectors.matrix.messages.replies import after_fallback, is_reply, looks_like_fallback

CONNECTOR = "matrix"
_SEPARATORS = frozenset(":, \t\n")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the bot is in a room: its user id and the names a mention may start with."""

    user_id: str
    names: tuple[str, ...]  # longest first, so "@bot:hs" wins over "@bot"

    @classmethod
    def of(cls, user_id: str, display_name: str | None = None) -> Identity:
        localpart = user_id[1:].split(":", 1)[0]
        names = {user_id, f"@{localpart}", localpart}
        if display_name and display_name.strip():
            names.add(display_name.strip())
        return cls(user_id, tuple(sorted(names, key=len, reverse=True)))


def _dict(value: Any) -> JsonDict:
    return value if isinstance(value, dict) else {}


def strip_mention(body: str, names: tuple[str, ...]) -> str | None:
    """``body`` without a leading mention of one of ``names``; None if it starts with none.

    A mention is a name (any case) followed by ``:``, ``,``, whitespace or the end. After
    ``@localpart``, a ``:`` must be followed by whitespace or the end: ``@bot:other.org``
    is someone else, on another server.
    """
    folded = body.casefold()
    for name in names:
        size = len(name)
        if not folded.startswith(name.casefold()):
            continue
        rest = body[size:]
        if name.startswith("@") and rest.startswith(":") and rest[1:2].strip():
            continue
        if not rest or rest[0] in _SEPARATORS:
            return rest.lstrip(":,").strip()
    return None


def mentions(content: JsonDict, user_id: str) -> bool:
    """Whether the event's intentional mentions (``m.mentions.user_ids``) name ``user_id``."""
    user_ids = _dict(content.get("m.mentions")).get("user_ids")
    return isinstance(user_ids, list) and user_id in user_ids


def thread_root(content: JsonDict) -> str | None:
    """The thread root event id when the event is in an ``m.thread``."""
    relates_to = _dict(content.get("m.relates_to"))
    root = relates_to.get("event_id")
    if relates_to.get("rel_type") == "m.thread" and isinstance(root, str):
        return root
    return None


def to_inbound(
    event: JsonDict, room: str, me: Identity, threads: ThreadMemory | None = None
) -> InboundMessage | None:
    """The message a person wrote, or None for anything else.

    Only ``m.text`` counts: notices are other bots talking, and the bot's own events are not
    inbound. A reply's text is what follows its fallback. An edit (``m.replace``) is the new
    content's text, ``replaces`` naming the event it edits (always the first one: an edit of
    an edit points at the original too); the router decides whether it still applies.
    ``threads`` remembers each message's thread (the bot's own too), so an edit or a
    reaction (which carry none) is placed in its original's thread. A reaction's text is its
    key (``✅``), ``reacts_to`` the event it annotates; the bot's own reactions are not inbound.
    """
    content = _dict(event.get("content"))
    sender, event_id = event.get("sender"), event.get("event_id")
    stamp = event.get("origin_server_ts")
    if (
        event.get("type") not in ("m.room.message", "m.reaction")
        or not isinstance(sender, str)
        or not isinstance(event_id, str)
        or isinstance(stamp, bool)
        or not isinstance(stamp, int)
    ):
        return None
    if event.get("type") == "m.reaction":
        if sender == me.user_id:
            return None
        return _reaction(content, sender, event_id, stamp, room, threads)
    if sender == me.user_id:
        if threads is not None:  # a reaction to the bot's message lands in its thread
            threads.place(event_id, _replaced(content), thread_root(content))
        return None
    relates_to = _dict(content.get("m.relates_to"))
    replaces: str | None = None
    if relates_to.get("rel_type") == "m.replace" or "m.new_content" in content:
        replaces, content = _edit(relates_to, content, event_id)
        if replaces is None:
            return None
        text = after_fallback(content, reply=looks_like_fallback(str(content.get("body"))))
    else:
        text = after_fallback(content, reply=is_reply(content))
    if content.get("msgtype") != "m.text" or not isinstance(content.get("body"), str):
        return None
    timestamp = _when(stamp)
    if timestamp is None:
        return None
    stripped = strip_mention(text, me.names)
    root = thread_root(content) if replaces is None else None
    if threads is not None:
        root = threads.place(event_id, replaces, root)
    return InboundMessage(
        connector=CONNECTOR,
        sender=UserId(sender),
        text=text if stripped is None else stripped,
        room=RoomId(room),
        timestamp=timestamp,
        event_id=EventId(event_id),
        thread_id=None if root is None else ThreadId(root),
        addressed=stripped is not None or mentions(content, me.user_id),
        replaces=None if replaces is None else EventId(replaces),
    )


def _reaction(
    content: JsonDict,
    sender: str,
    event_id: str,
    stamp: int,
    room: str,
    threads: ThreadMemory | None = None,
) -> InboundMessage | None:
    """An ``m.reaction`` annotation: its key as the text, ``reacts_to`` the event annotated,
    placed in that event's thread when :class:`ThreadMemory` saw it."""
    relates_to = _dict(content.get("m.relates_to"))
    target, key = relates_to.get("event_id"), relates_to.get("key")
    timestamp = _when(stamp)
    if (
        relates_to.get("rel_type") != "m.annotation"
        or not isinstance(target, str)
        or not isinstance(key, str)
        or not key.strip()
        or target == event_id
        or timestamp is None
    ):
        return None
    root = threads.thread_of(target) if threads is not None else None
    return InboundMessage(
        connector=CONNECTOR,
        sender=UserId(sender),
        text=key.strip(),
        room=RoomId(room),
        timestamp=timestamp,
        event_id=EventId(event_id),
        thread_id=None if root is None else ThreadId(root),
        reacts_to=EventId(target),
    )


def _when(stamp: int) -> datetime | None:
    try:
        return datetime.fromtimestamp(stamp / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):  # beyond the years a datetime can hold
        return None


def _replaced(content: JsonDict) -> str | None:
    relates_to = _dict(content.get("m.relates_to"))
    original = relates_to.get("event_id")
    return (
        original
        if relates_to.get("rel_type") == "m.replace" and isinstance(original, str)
        else None
    )


def _edit(relates_to: JsonDict, content: JsonDict, event_id: str) -> tuple[str | None, JsonDict]:
    """The id an edit replaces and its new content; ``None`` for a malformed edit (no
    original, no new content, or one that names itself)."""
    original, new = relates_to.get("event_id"), content.get("m.new_content")
    if (
        relates_to.get("rel_type") != "m.replace"
        or not isinstance(original, str)
        or not isinstance(new, dict)
        or original == event_id
    ):
        return None, content
    return original, new


def is_encrypted(event: JsonDict) -> bool:
    """An ``m.room.encrypted`` event: a message we cannot read."""
    return event.get("type") == "m.room.encrypted"


def turns_on_encryption(event: JsonDict) -> bool:
    """An ``m.room.encryption`` state event: the room is end-to-end encrypted from here on."""
    return event.get("type") == "m.room.encryption" and event.get("state_key") == ""


def is_own_join(event: JsonDict, user_id: str) -> bool:
    """The bot's own membership becoming ``join`` (not a profile change while joined)."""
    if event.get("type") != "m.room.member" or event.get("state_key") != user_id:
        return False
    previous = _dict(_dict(event.get("unsigned")).get("prev_content")).get("membership")
    return _dict(event.get("content")).get("membership") == "join" and previous != "join"


def inviter(invite_state: list[JsonDict], user_id: str) -> str | None:
    """Who invited ``user_id``, from the stripped state of an invited room."""
    for event in invite_state:
        content = _dict(event.get("content"))
        sender = event.get("sender")
        if (
            event.get("type") == "m.room.member"
            and event.get("state_key") == user_id
            and content.get("membership") == "invite"
            and isinstance(sender, str)
        ):
            return sender
    return None


class ThreadMemory:
    """The thread of each recent message by event id, oldest forgotten first, so an edit
    (whose relation is ``m.replace``, not ``m.thread``) lands where its original was."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._threads: OrderedDict[str, str | None] = OrderedDict()

    def thread_of(self, event_id: str) -> str | None:
        """The thread of a message seen (``None``: in no thread, or not remembered)."""
        return self._threads.get(event_id)

    def place(self, event_id: str, replaces: str | None, root: str | None) -> str | None:
        """The thread of message ``event_id``: ``root`` for a new message (remembered), the
        original's thread for an edit of ``replaces`` (``None`` when not remembered)."""
        if replaces is not None:
            return root if root is not None else self._threads.get(replaces)
        self._threads[event_id] = root
        self._threads.move_to_end(event_id)
        while len(self._threads) > self._capacity:
            self._threads.popitem(last=False)
        return root


class RecentIds:
    """A bounded set of event ids already emitted, oldest forgotten first."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
