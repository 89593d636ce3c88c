"""The console connector: the operator at the terminal, on stdin and stdout.

Each line on stdin is a message from one user (``console`` by default), addressed to
the bot, so the command prefix is optional. Replies are plain text on stdout. End of
input or ``quit`` ends the inbound stream, and with it the app. Works the same with
stdin from a pipe and at an interactive terminal (where it shows a prompt).

A terminal has no attachments: a file sent with a message (a long diff) is printed after
it, whole, between a line naming it with its size and a line ending it, as the console
prints any long text. Nothing is written to disk. Characters that would drive the terminal
(an escape sequence) are taken out of it first, as the redactor takes them out of text.

stdin is read by one daemon thread: a blocking read cannot be cancelled, and a
daemon thread never holds up the process's exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import sys
import threading
from collections.abc import AsyncIterator
from typing import BinaryIO, TextIO

from connectors.base import (
    Attachment,
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    SendResult,
    ThreadId,
    UserId,
)
from connectors.console_config import ConsoleConfig
from connectors.errors import ThreadsUnsupported
from connectors.markdown import to_plain
from fleet.clock import Clock
from fleet.redaction.invisible import visible

ROOM = RoomId("console")
_QUIT_WORDS = frozenset({"quit", "!quit"})


class _State(enum.Enum):
    NEW = "new"
    STARTED = "started"
    STOPPED = "stopped"


class ConsoleConnector:
    """stdin/stdout as a chat room with one person in it."""

    def __init__(
        self,
        config: ConsoleConfig,
        clock: Clock,
        *,
        stdin: BinaryIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._stdin = stdin if stdin is not None else sys.stdin.buffer
        self._stdout = stdout if stdout is not None else sys.stdout
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._interactive = self._stdin.isatty() and self._stdout.isatty()
        self._state = _State.NEW
        self._sent = 0

    @property
    def name(self) -> str:
        return "console"

    @property
    def has_threads(self) -> bool:
        return False

    @property
    def home_room(self) -> RoomId | None:
        return ROOM

    async def start(self) -> None:
        if self._state is not _State.NEW:
            raise RuntimeError("the console connector starts once")
        self._state = _State.STARTED
        loop = asyncio.get_running_loop()
        reader = threading.Thread(
            target=self._read_lines, args=(loop,), name="console-stdin", daemon=True
        )
        reader.start()
        if self._interactive:
            self._write("Fleetwarden console — type `help`, or `quit` to leave.\n")
            self._prompt()

    def _read_lines(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for raw in self._stdin:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if line.strip().lower() in _QUIT_WORDS:
                    break
                loop.call_soon_threadsafe(self._queue.put_nowait, line)
        except (OSError, ValueError):
            pass  # stdin closed under us: same as end of input
        finally:
            # RuntimeError: the loop is already closed, so nobody is listening.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def stop(self) -> None:
        self._state = _State.STOPPED
        self._queue.put_nowait(None)

    async def inbound(self) -> AsyncIterator[InboundMessage]:
        while self._state is _State.STARTED:
            line = await self._queue.get()
            if line is None:
                return
            if not line.strip():
                self._prompt()
                continue
            yield InboundMessage(
                connector=self.name,
                sender=UserId(self._config.user_id),
                text=line,
                room=ROOM,
                timestamp=self._clock.now(),
                addressed=True,
            )

    async def send(self, message: OutboundMessage) -> SendResult:
        text = to_plain(message.markdown).rstrip("\n")
        for image in message.images:
            text += f"\n[image: {image}]"
        for file in message.files:
            text += "\n" + _shown(file)
        self._write(text + "\n\n")
        self._prompt()
        self._sent += 1
        return SendResult(event_ids=(EventId(f"console-{self._sent}"),))

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        """A terminal cannot change what it printed: the new text is printed again."""
        text = to_plain(markdown).rstrip("\n")
        self._write(f"(updated) {text}\n\n")
        self._prompt()

    async def health(self) -> ConnectorHealth:
        return ConnectorHealth(ok=self._state is _State.STARTED, detail=self._state.value)

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        raise ThreadsUnsupported("the console has no threads")

    def typing(
        self, room: RoomId, thread: ThreadId | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()  # a terminal shows no typing

    async def mark_read(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> None:
        pass  # nor read receipts

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        return None

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        return None

    def _prompt(self) -> None:
        if self._interactive and self._state is _State.STARTED:
            self._write(self._config.prompt)

    def _write(self, text: str) -> None:
        try:
            self._stdout.write(text)
            self._stdout.flush()
        except (BrokenPipeError, ValueError):
            pass  # whoever read our output has gone; keep running for the rest


def _shown(file: Attachment) -> str:
    """``file`` as the console prints it: a line naming it, its text, a line ending it."""
    body = visible(file.data.decode("utf-8", errors="replace")).rstrip("\n")
    return f"[file {file.name}, {_size(len(file.data))}]\n{body}\n[end of {file.name}]"


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"
