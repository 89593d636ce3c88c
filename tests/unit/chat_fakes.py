"""Fakes shared by the router tests: a chat connector, handler recorders, messages."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from bot.commands import COMMANDS
from bot.grammar import Grammar
from bot.request import Handler, Request
from connectors.base import (
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    SendResult,
    ThreadId,
    UserId,
)
from connectors.errors import ConnectorError, ThreadsUnsupported

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OPERATOR = "@ann:example.org"
VIEWER = "@vic:example.org"
STRANGER = "@mallory:example.org"


class FakeConnector:
    """A chat connector that records what the router sends through it."""

    def __init__(self, name: str = "matrix") -> None:
        self._name = name
        self.sent: list[OutboundMessage] = []
        self.typed: list[tuple[RoomId, ThreadId | None]] = []  # typing blocks entered
        self.read: list[tuple[RoomId, EventId, ThreadId | None]] = []
        self.edited: list[tuple[RoomId, EventId, str]] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def has_threads(self) -> bool:
        return False

    @property
    def home_room(self) -> RoomId | None:
        return None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def inbound(self) -> AsyncIterator[InboundMessage]:
        return
        yield  # an async generator that yields nothing

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult(event_ids=(EventId(f"$sent-{len(self.sent)}"),))

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        self.edited.append((room, event_id, markdown))

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

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        return None

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        return None


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

    def __init__(self, name: str, home: str | None, *, broken: bool = False) -> None:
        super().__init__(name)
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

    def __init__(self, name: str = "matrix") -> None:
        super().__init__(name)
        self.roots: list[tuple[RoomId, str, str]] = []

    @property
    def has_threads(self) -> bool:
        return True

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        self.roots.append((room, topic, first_message))
        return ThreadId(f"$root-{len(self.roots)}")

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        return thread_url(room, thread)

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        return f"{thread_url(room, thread or event_id)}#{event_id}"


def thread_url(room: str, thread: str) -> str:
    """The link :class:`ThreadedConnector` gives a thread."""
    return f"https://chat.example/{room}/{thread}"
