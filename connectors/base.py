"""The connector interface: what the bot core knows about any chat system.

Bot core never branches on connector kind. A connector turns its service's events
into :class:`InboundMessage` and renders the markdown of an :class:`OutboundMessage`
for its medium (HTML for Matrix, Discord markdown, plain text on the console).
"""

from __future__ import annotations

import contextlib
import enum
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, NewType, Protocol

from connectors.health import LinkHealth
from fleet.notices import Tone as Tone  # notices are the fleet's; connectors show them

RoomId = NewType("RoomId", str)
ThreadId = NewType("ThreadId", str)
UserId = NewType("UserId", str)
EventId = NewType("EventId", str)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a person wrote, as the connector saw it.

    ``addressed`` is true when the message is certainly meant for the bot (the
    console, a direct message, or a mention the connector already stripped from
    ``text``): the command prefix is then optional. ``groups`` are what the sender
    belongs to on the service, as the ACL names them (Discord roles: ``role:<id>``).

    ``replaces`` is set when the message is an edit: the id of the message it edits (the
    first one, for an edit of an edit), with ``text`` the edited text. ``event_id`` is then
    the edit's own id, unique to this edit (claimed like any event's, so a replay is
    handled once).

    ``reacts_to`` is set when the message is a reaction (Matrix ``m.reaction``, a Discord
    reaction added): the id of the message reacted to, with ``text`` the reaction's key
    (an emoji such as ``✅``). ``event_id`` is then the reaction's own id (on Discord,
    made unique from the message, user and emoji).
    """

    connector: str
    sender: UserId
    text: str
    room: RoomId
    timestamp: datetime
    event_id: EventId | None = None
    thread_id: ThreadId | None = None
    addressed: bool = False
    groups: tuple[str, ...] = ()
    replaces: EventId | None = None
    reacts_to: EventId | None = None


MAX_FILE_BYTES: Final = 8 * 1024 * 1024
"""The most one attached file holds: within Discord's smallest upload limit and Synapse's."""
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_UNSAFE_RUN: Final = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS: Final = re.compile(r"\.{2,}")
_TEXT_MIME: Final = re.compile(r"text/[a-z0-9][a-z0-9.+-]{0,63}")


@dataclass(frozen=True, slots=True)
class Attachment:
    """A text file posted with a message (a long diff), made by Fleetwarden.

    ``name`` is a safe file name: ASCII letters, digits, ``.``, ``_`` and ``-``, at most 100,
    starting with a letter or digit (:func:`safe_file_name` makes one of any words). ``mime``
    is a text type (``text/x-diff``) and ``data`` UTF-8 text of at most
    :data:`MAX_FILE_BYTES`: the redactor reads every byte before it leaves. Build one from a
    text with :meth:`of_text`, which cuts a longer text with a note. Anything else is a
    ``ValueError``.
    """

    name: str
    mime: str
    data: bytes

    def __post_init__(self) -> None:
        if not _SAFE_NAME.fullmatch(self.name) or ".." in self.name:
            raise ValueError(f"not a safe file name: {self.name!r}")
        if not _TEXT_MIME.fullmatch(self.mime):
            raise ValueError(f"an attachment is text: {self.mime!r} is not a text type")
        if len(self.data) > MAX_FILE_BYTES:
            raise ValueError(f"{self.name}: {len(self.data)} bytes, over {MAX_FILE_BYTES}")
        self.data.decode("utf-8")  # UnicodeDecodeError is a ValueError

    @classmethod
    def of_text(cls, name: str, text: str, mime: str = "text/plain") -> Attachment:
        """``text`` as a file; past :data:`MAX_FILE_BYTES` it is cut at a line's end and a
        last line says how much is missing."""
        data = text.encode("utf-8", errors="replace")  # a lone surrogate becomes "?"
        if len(data) <= MAX_FILE_BYTES:
            return cls(name, mime, data)
        note = f"\n[cut here: {{}} of {len(data)} bytes not included]\n"
        room = MAX_FILE_BYTES - len(note.format(len(data)).encode())
        end = data.rfind(b"\n", 0, room + 1)
        kept = data[: end + 1 if end > 0 else room].decode("utf-8", errors="ignore")
        size = len(kept.encode())
        return cls(name, mime, (kept + note.format(len(data) - size)).encode())


def safe_file_name(words: str, suffix: str = "") -> str:
    """A safe :attr:`Attachment.name` of ``words`` and ``suffix`` (``.diff``): each run of
    other characters becomes ``-``, leading dots and dashes go, and it is cut to fit."""
    stem = _DOTS.sub(".", _UNSAFE_RUN.sub("-", words)).lstrip(".-_")
    tail = _DOTS.sub(".", _UNSAFE_RUN.sub("-", suffix))[:20]
    stem = stem[: 100 - len(tail)].rstrip(".") or "file"
    return stem + tail


class RunState(enum.StrEnum):
    """What the thread of an agent's run shows, where the medium can show it (a Slack
    agent session's status): the bot tells each change through
    :meth:`Connector.show_run_state`."""

    WORKING = "working"
    """The agent is at work on a turn."""
    WAITING = "waiting"
    """On an answer from a person: an approval, a question, a spend ask; or frozen."""
    IDLE = "idle"
    """Between turns: the agent waits for its next message."""
    ENDED = "ended"
    """The run is over."""


@dataclass(frozen=True, slots=True)
class Choice:
    """A button offered with a message, where the medium has buttons (Slack Block Kit).

    ``label`` is what the button says (``Approve``, ``Deny``, ``Merge``). ``answer`` is what
    a click means: a reaction with the key ``answer`` (``✅``) on the message, or, when
    ``as_reply`` is true, a message ``answer`` (``yes``) the clicker writes to the bot in
    the message's room and thread. ``style`` marks the button that goes ahead
    (``primary``) or the one that refuses or stops (``danger``). Elsewhere the choices
    are not shown: the reactions and replies they stand for still work.
    """

    label: str
    answer: str
    as_reply: bool = False
    style: Literal["primary", "danger"] | None = None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A reply or notice: markdown text, optionally in a thread, optionally with images and
    files.

    ``tone`` marks a notice about the fleet (an agent failed, a budget stepped up) rather
    than an answer; a connector that can show status (a Discord embed) may use it.
    ``alert`` marks a notice that must wake someone (a failure, a limit reached, a stalled
    agent): the connector posts it so clients notify, where its medium and settings allow.
    ``mentions`` are the users of this connector it should wake: the connector mentions
    them (Matrix ``m.mentions`` and pills, Discord ``<@id>`` allowed to ping); an alert
    without any mentions the connector's own on-call users, if it has them.
    ``files`` are posted after the text and the images: an ``m.file`` on Matrix (encrypted
    in an encrypted room), an attachment on Discord, the text itself on the console.
    ``choices`` are the answers offered as buttons where the medium has them
    (:class:`Choice`); a connector without buttons ignores them.
    """

    room: RoomId
    markdown: str
    thread_id: ThreadId | None = None
    in_reply_to: EventId | None = None
    images: tuple[Path, ...] = field(default=())
    tone: Tone | None = None
    alert: bool = False
    mentions: tuple[UserId, ...] = field(default=())
    files: tuple[Attachment, ...] = field(default=())
    choices: tuple[Choice, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a send produced: the ids of the events posted (several when split)."""

    event_ids: tuple[EventId, ...]


@dataclass(frozen=True, slots=True)
class ConnectorHealth:
    """Whether the connector can currently reach its service, and why not."""

    ok: bool
    detail: str


class Connector(Protocol):
    """A chat system the bot talks through."""

    @property
    def name(self) -> str:
        """The connector's configured name (``console``, ``matrix``, ...)."""
        ...

    @property
    def home_room(self) -> RoomId | None:
        """Where fleet-wide notices go when no thread applies (``None``: nowhere)."""
        ...

    @property
    def has_threads(self) -> bool:
        """Whether this medium has threads: an agent's live work is posted only into its
        threads where it does, and into the home room where it does not (a terminal)."""
        ...

    @property
    def link(self) -> LinkHealth:
        """Its link to the service as it last saw it (:mod:`connectors.health`): the
        connector marks it connected, logged in, lost, each event and each error; the app
        reads it for ``status``, the dashboard and ``/metrics``."""
        ...

    async def start(self) -> None:
        """Connect. Raise :class:`connectors.errors.ConnectorError` if that is impossible."""
        ...

    async def stop(self) -> None:
        """Disconnect and release everything. Safe to call once after ``start``."""
        ...

    def inbound(self) -> AsyncIterator[InboundMessage]:
        """Messages as they arrive. The stream ends when the connector stops, or when
        the person on the other end closed it (console EOF) — the app then shuts down."""
        ...

    async def send(self, message: OutboundMessage) -> SendResult:
        """Post a message, rendered for this medium."""
        ...

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        """Replace the text of a message the bot posted (``event_id``, the first event of a
        :meth:`send`, in ``thread`` if it was sent there) with ``markdown``: an ``m.replace``
        on Matrix, an edit on Discord (where a thread is a channel of its own: give
        ``thread``), a new line on the console. Raises
        :class:`connectors.errors.ConnectorError` when the service refuses."""
        ...

    async def health(self) -> ConnectorHealth:
        """Whether the service is reachable and we are who we think we are."""
        ...

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        """Post ``first_message`` in ``room`` and make it the root of a thread for ``topic``.

        Raises :class:`connectors.errors.ThreadsUnsupported` where there are no threads.
        """
        ...

    def typing(
        self, room: RoomId, thread: ThreadId | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Show the bot as typing in ``room`` (``thread``, where the medium can tell) while
        the block runs, refreshed as the medium needs, and stop at its end. A medium without
        typing notices does nothing. Failing to show it never raises: it is logged."""
        ...

    async def mark_read(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> None:
        """Mark ``event_id`` (in ``thread`` if given) as read by the bot: a read receipt
        where the medium has them, else nothing. Failing never raises: it is logged."""

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        """A link that opens ``thread`` of ``room`` in the service's clients, for an answer
        given elsewhere to point at it (``None`` where there is no such link)."""
        ...

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        """A link that opens the message ``event_id`` (posted in ``room``, in ``thread`` if
        given) in the service's clients (``None`` where there is no such link)."""
        ...

    async def show_run_state(
        self, room: RoomId, thread: ThreadId, state: RunState, title: str
    ) -> None:
        """Show that the run ``thread`` (of ``room``) is about is now in ``state``
        (:class:`RunState`), under ``title`` (the run's task's title or the run's own, at
        most 200 characters, text an agent may have written): a Slack agent session's
        status; nothing where the medium has no such thing. Failing never raises: it is
        logged."""
