"""The console connector: the operator at the terminal, on stdin and stdout.

Each line on stdin is a message from one user (``console`` by default), addressed to
the bot, so the command prefix is optional. Replies are plain text on stdout. End of
input or ``quit`` ends the inbound stream, and with it the app. Works the same with
stdin from a pipe and at an interactive terminal.

At a terminal it shows a prompt, kept at the bottom: replies, agents' output and the
warnings Fleetwarden logs are printed above it, and the prompt with the half-typed line
drawn again beneath (:mod:`connectors.console.screen`); tables are fitted to the
terminal's width, their cells wrapped between words. From a pipe there is no prompt, and
tables keep one row a line.

A terminal has no attachments: a file sent with a message (a long diff) is printed after
it, whole, between a line naming it with its size and a line ending it, as the console
prints any long text. Nothing is written to disk. Characters that would drive the terminal
(an escape sequence) are taken out of it first, as the redactor takes them out of text.

No thread reads stdin (:mod:`connectors.console.input`): the event loop says when there
is something to read, so Ctrl-C, SIGTERM or the end of input find nothing blocked in a
read, and the process exits as it should.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import enum
import logging
import os
import signal
import sys
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
from connectors.console.config import ConsoleConfig
from connectors.console.input import LineSplitter, StdinSource
from connectors.console.screen import LogsAbove, Screen, TerminalMode, terminal_columns
from connectors.defaults import ConnectorDefaults
from connectors.errors import ThreadsUnsupported
from connectors.health import LinkHealth
from connectors.markdown import to_plain
from fleet.redaction.invisible import visible
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

ROOM = RoomId("console")
_QUIT_WORDS = frozenset({"quit", "!quit"})


class _State(enum.Enum):
    NEW = "new"
    STARTED = "started"
    STOPPED = "stopped"


class ConsoleConnector(ConnectorDefaults):
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
        self._fits = self._stdout.isatty()  # tables fitted to the terminal's width
        self._state = _State.NEW
        self._sent = 0
        self._heard = False  # any byte read from stdin
        self._source = StdinSource(self._stdin, self._take, self._ended)
        self._lines = LineSplitter()
        self._screen: Screen | None = None  # the prompt, at a terminal that reads keys
        self._mode: TerminalMode | None = None
        self._logs: LogsAbove | None = None
        self._suspending = False
        self._link = LinkHealth("console", clock)

    @property
    def name(self) -> str:
        return "console"

    @property
    def has_threads(self) -> bool:
        return False

    @property
    def home_room(self) -> RoomId | None:
        return ROOM

    @property
    def link(self) -> LinkHealth:
        """Up from the start to the stop: a terminal has no outage. The end of input is no
        outage either: the commands read before it are still being answered (and
        ``status`` among them would report the console down), then the app stops."""
        return self._link

    async def start(self) -> None:
        if self._state is not _State.NEW:
            raise RuntimeError("the console connector starts once")
        self._state = _State.STARTED
        self._link.connected()
        if self._interactive:
            self._write("Fleetwarden console — type `help`, or `quit` to leave.\n")
            self._open_screen()
            if self._screen is None:
                self._write(self._config.prompt)  # the terminal edits the line itself
        self._source.start()

    def _open_screen(self) -> None:
        """At a terminal that reads key by key: the prompt at the bottom, text above it."""
        mode = TerminalMode(self._stdin.fileno())
        if not mode.enter():
            return
        screen = Screen(self._stdout, self._config.prompt, interrupt=_interrupt)
        self._mode, self._screen = mode, screen
        self._logs = LogsAbove(self._screen, self._stdout)
        self._logs.start()
        self._screen.open()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTSTP, self._suspend)

    def _suspend(self) -> None:
        """Ctrl-Z: the terminal as it was while Fleetwarden is stopped; the prompt after."""
        if self._screen is None or self._mode is None or self._suspending:
            return
        self._suspending = True
        try:
            with self._screen.suspended():
                self._mode.leave()
                os.kill(os.getpid(), signal.SIGSTOP)  # returns once continued (fg)
                self._mode.enter()
        finally:
            self._suspending = False

    def _close_screen(self) -> None:
        if self._screen is None:
            return
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTSTP)
        if self._logs is not None:
            self._logs.stop()
        self._screen.close()
        if self._mode is not None:
            self._mode.leave()
        self._screen = self._mode = self._logs = None

    def _take(self, data: bytes) -> None:
        """Bytes from stdin: keys to edit at a terminal, lines from anywhere else."""
        self._heard = True
        lines = self._screen.keys(data) if self._screen is not None else self._lines.feed(data)
        for line in lines:
            if line is None or line.strip().lower() in _QUIT_WORDS:
                self._source.stop()
                self._queue.put_nowait(None)
                return
            near = _near_quit(line)
            if near is not None:
                self._print(near + "\n\n")
                continue
            self._queue.put_nowait(line)

    def _ended(self) -> None:
        """The end of input: the last line without a newline, then the end. Input that
        ended before its first byte (``< /dev/null``, a closed pipe, a service with no
        stdin) is said once: the app stops with it, which a headless start does not expect."""
        if not self._heard:
            log.warning(
                "the console's input ended before any command (stdin is empty or closed), "
                "so Fleetwarden stops: the console reads commands from stdin until its end. "
                "To run unattended, keep stdin open or use a config whose connectors do "
                "not include the console (`fleetwarden init`, docs/configuration.md)"
            )
        for line in self._lines.end():
            if line.strip().lower() in _QUIT_WORDS:
                break
            self._queue.put_nowait(line)
        self._queue.put_nowait(None)

    async def stop(self) -> None:
        self._state = _State.STOPPED
        self._link.closed()
        self._source.stop()
        self._close_screen()
        self._queue.put_nowait(None)

    async def inbound(self) -> AsyncIterator[InboundMessage]:
        while self._state is _State.STARTED:
            line = await self._queue.get()
            if line is None:  # the person left: the app answers what came, then stops
                return
            self._link.event()
            if not line.strip():
                if self._screen is None:
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
        text = self._plain(message.markdown)
        for image in message.images:
            text += f"\n[image: {image}]"
        for file in message.files:
            text += "\n" + _shown(file)
        self._print(text + "\n\n")
        self._sent += 1
        return SendResult(event_ids=(EventId(f"console-{self._sent}"),))

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        """A terminal cannot change what it printed: the new text is printed again."""
        self._print(f"(updated) {self._plain(markdown)}\n\n")

    async def health(self) -> ConnectorHealth:
        return ConnectorHealth(ok=self._state is _State.STARTED, detail=self._state.value)

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        raise ThreadsUnsupported("the console has no threads")

    def _plain(self, markdown: str) -> str:
        width = terminal_columns(self._stdout) if self._fits else None
        return to_plain(markdown, width=width).rstrip("\n")

    def _print(self, text: str) -> None:
        """``text`` above the prompt at a terminal that reads keys; else as it is, and the
        prompt after it at a terminal that edits the line itself."""
        if self._screen is not None:
            self._screen.above(text)
            return
        self._write(text)
        self._prompt()

    def _prompt(self) -> None:
        if self._interactive and self._state is _State.STARTED:
            self._write(self._config.prompt)

    def _write(self, text: str) -> None:
        try:
            self._stdout.write(text)
            self._stdout.flush()
        except (BrokenPipeError, ValueError):
            pass  # whoever read our output has gone; keep running for the rest


def _interrupt() -> None:
    """Ctrl-C on an empty line, read as a key: the interrupt the terminal would have sent."""
    os.kill(os.getpid(), signal.SIGINT)


def _near_quit(line: str) -> str | None:
    """What a mistyped ``quit`` (``quti``) is answered: the console's own word is no chat
    command, so the grammar could only say it is unknown."""
    word = line.strip().lower().removeprefix("!")
    if not word or " " in word or not difflib.get_close_matches(word, ["quit"], cutoff=0.75):
        return None
    return (
        f"unknown command {word!r} — did you mean 'quit'? (`quit`, or Ctrl-D on an empty "
        "line, leaves)"
    )


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
