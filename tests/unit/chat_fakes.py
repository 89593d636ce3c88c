"""Fakes shared by the router tests: a chat connector, handler recorders, messages.

The fake connectors keep the connector contract (:mod:`tests.connector_contract`, run
over them in ``tests/unit/connectors/discord/test_connector_contract.py``) as strictly as the
real ones: a long text is split at :attr:`FakeConnector.limit`, an edit of a message it
did not post or to an empty text is refused, a thread it did not open is refused, and —
when the fake is told its ``rooms`` — so is any other room. A person's side
(:meth:`FakeConnector.person_says`, ``person_reacts``, ``person_takes_back``) feeds
:meth:`FakeConnector.inbound`."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Handler, Request
from bot.commands.specs import COMMANDS
from connectors.base import (
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    RunState,
    SendResult,
    ThreadId,
    UserId,
)
from connectors.defaults import ConnectorDefaults
from connectors.errors import ConnectorError, ThreadsUnsupported
from connectors.health import LinkHealth
from connectors.inbox import Inbox
from connectors.markdown_split import split_markdown
from fleet.timing.clock import SystemClock

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OPERATOR = "@ann:example.org"
VIEWER = "@vic:example.org"
STRANGER = "@mallory:example.org"


@dataclass(slots=True)
class Stored:
    """A message the fake holds: where it is, its text now, whether the bot posted it."""

    room: RoomId
    thread: ThreadId | None
    text: str
    by_bot: bool


class FakeConnector(ConnectorDefaults):
    """A chat connector that records what the router sends through it."""

    limit = 16_000  # characters in one message, as the Matrix connector splits

    def __init__(self, name: str = "matrix", *, rooms: Iterable[str] | None = None) -> None:
        """``rooms``: the rooms that exist (any room, when not given)."""
        self._name = name
        self._rooms = None if rooms is None else {RoomId(r) for r in rooms}
        self.sent: list[OutboundMessage] = []
        self.typed: list[tuple[RoomId, ThreadId | None]] = []  # typing blocks entered
        self.read: list[tuple[RoomId, EventId, ThreadId | None]] = []
        self.run_states: list[tuple[RoomId, ThreadId, RunState, str]] = []
        self.edited: list[tuple[RoomId, EventId, str]] = []
        self.stored: dict[EventId, Stored] = {}
        self._ids = itertools.count(1)
        self._inbox = Inbox()
        self._link = LinkHealth(name, SystemClock())

    @property
    def name(self) -> str:
        return self._name

    @property
    def link(self) -> LinkHealth:
        return self._link

    @property
    def has_threads(self) -> bool:
        return False

    @property
    def home_room(self) -> RoomId | None:
        return None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self._inbox.close()

    def inbound(self) -> AsyncIterator[InboundMessage]:
        return self._inbox.messages()

    async def send(self, message: OutboundMessage) -> SendResult:
        self._check_room(message.room)
        self._check_thread(message.room, message.thread_id)
        self.sent.append(message)
        first = EventId(f"$sent-{len(self.sent)}")
        ids = [first]
        parts = split_markdown(message.markdown, self.limit) or [message.markdown]
        self.stored[first] = Stored(message.room, message.thread_id, parts[0], by_bot=True)
        for part in parts[1:]:
            ids.append(self._store(message.room, message.thread_id, part, by_bot=True))
        return SendResult(event_ids=tuple(ids))

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        stored = self.stored.get(event_id)
        if stored is None or stored.room != room or not stored.by_bot:
            raise ConnectorError(f"{self.name}: no message {event_id} of the bot in {room}")
        if not markdown.strip():
            raise ConnectorError(f"{self.name}: cannot edit {event_id} to an empty message")
        stored.text = markdown
        self.edited.append((room, event_id, markdown))

    def _store(self, room: RoomId, thread: ThreadId | None, text: str, *, by_bot: bool) -> EventId:
        event_id = EventId(f"$fake-{next(self._ids)}")
        self.stored[event_id] = Stored(room, thread, text, by_bot)
        return event_id

    def _check_room(self, room: RoomId) -> None:
        if self._rooms is not None and room not in self._rooms:
            raise ConnectorError(f"{self.name}: there is no room {room}")

    def _check_thread(self, room: RoomId, thread: ThreadId | None) -> None:
        """A medium without threads takes a thread id and posts in the room."""

    # -- a person in the room ------------------------------------------------------------

    def person_says(
        self,
        room: str,
        text: str,
        *,
        sender: str = OPERATOR,
        thread: str | None = None,
        addressed: bool = False,
    ) -> EventId:
        """``sender`` writes ``text`` (to the bot, when ``addressed``); it comes in through
        :meth:`inbound`."""
        event_id = self._store(
            RoomId(room), None if thread is None else ThreadId(thread), text, by_bot=False
        )
        self._inbox.put(
            message(
                text,
                sender=sender,
                event_id=event_id,
                room=room,
                thread_id=thread,
                addressed=addressed,
                connector=self.name,
            )
        )
        return event_id

    def person_reacts(self, event_id: EventId, key: str, *, sender: str = OPERATOR) -> None:
        """``sender`` reacts to ``event_id`` (which must exist) with ``key``."""
        stored = self.stored.get(event_id)
        if stored is None:
            raise KeyError(f"no message {event_id}")
        reaction = message(
            key, sender=sender, event_id=f"{event_id}:{key}", room=stored.room, connector=self.name
        )
        self._inbox.put(replace(reaction, reacts_to=event_id))

    def person_takes_back(self, event_id: EventId) -> None:
        """The person's message is gone (a redaction): nothing comes in."""
        if self.stored.pop(event_id, None) is None:
            raise KeyError(f"no message {event_id}")

    async def health(self) -> ConnectorHealth:
        return ConnectorHealth(ok=True, detail="fake")

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        raise ThreadsUnsupported("the fake has no threads")

    @contextlib.asynccontextmanager
    async def _typing(self, room: RoomId, thread: ThreadId | None) -> AsyncIterator[None]:
        self.typed.append((room, thread))
        yield

    def typing(
        self, room: RoomId, thread: ThreadId | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return self._typing(room, thread)

    async def mark_read(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> None:
        self.read.append((room, event_id, thread))

    async def show_run_state(
        self, room: RoomId, thread: ThreadId, state: RunState, title: str
    ) -> None:
        self.run_states.append((room, thread, state, title))


class Calls:
    """Handler coroutines for every command, recording each request they get."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.behaviour: dict[str, Callable[[Request], Awaitable[str]]] = {}

    def table(self) -> dict[str, Handler]:
        return {name: self._handler(name) for name in Grammar(COMMANDS).command_names()}

    def _handler(self, name: str) -> Handler:
        async def handle(req: Request) -> str:
            self.requests.append(req)
            special = self.behaviour.get(name)
            return await special(req) if special else f"ran **{name}**"

        return handle


def message(
    text: str,
    *,
    sender: str = OPERATOR,
    event_id: str | None = "$ev1",
    room: str = "!room:example.org",
    thread_id: str | None = None,
    addressed: bool = False,
    connector: str = "matrix",
) -> InboundMessage:
    return InboundMessage(
        connector=connector,
        sender=UserId(sender),
        text=text,
        room=RoomId(room),
        timestamp=T0,
        event_id=None if event_id is None else EventId(event_id),
        thread_id=None if thread_id is None else ThreadId(thread_id),
        addressed=addressed,
    )


class HomeConnector(FakeConnector):
    """A fake connector with a home room, optionally refusing every send."""

    def __init__(
        self,
        name: str,
        home: str | None,
        *,
        broken: bool = False,
        rooms: Iterable[str] | None = None,
    ) -> None:
        super().__init__(name, rooms=rooms)
        self._home = None if home is None else RoomId(home)
        self._broken = broken

    @property
    def home_room(self) -> RoomId | None:
        return self._home

    async def send(self, message: OutboundMessage) -> SendResult:
        if self._broken:
            raise ConnectorError(f"{self.name} is down")
        return await super().send(message)


class ThreadedConnector(FakeConnector):
    """A fake connector with threads: ``open_thread`` posts a root and returns its id, and
    each thread has a link."""

    def __init__(self, name: str = "matrix", *, rooms: Iterable[str] | None = None) -> None:
        super().__init__(name, rooms=rooms)
        self.roots: list[tuple[RoomId, str, str]] = []

    @property
    def has_threads(self) -> bool:
        return True

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        self._check_room(room)
        if not first_message.strip():
            raise ConnectorError(f"{self.name}: cannot open a thread with an empty message")
        self.roots.append((room, topic, first_message))
        root = ThreadId(f"$root-{len(self.roots)}")
        self.stored[EventId(root)] = Stored(room, None, first_message, by_bot=True)
        return root

    def add_thread(self, room: str, thread: str) -> None:
        """A thread opened before this fake was made (one the ledger already binds)."""
        self.stored[EventId(thread)] = Stored(RoomId(room), None, "(thread root)", by_bot=True)

    def _check_thread(self, room: RoomId, thread: ThreadId | None) -> None:
        """A thread is the root of one :meth:`open_thread` opened in ``room``."""
        root = None if thread is None else self.stored.get(EventId(thread))
        if thread is not None and (root is None or root.room != room or root.thread is not None):
            raise ConnectorError(f"{self.name}: there is no thread {thread} in {room}")

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        return thread_url(room, thread)

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        return f"{thread_url(room, thread or event_id)}#{event_id}"


def thread_url(room: str, thread: str) -> str:
    """The link :class:`ThreadedConnector` gives a thread."""
    return f"https://chat.example/{room}/{thread}"
