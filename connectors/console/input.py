"""What the console reads: stdin's bytes, taken as the event loop says they are there.

No thread reads stdin. A thread blocked in a read holds the stream's lock, and an
interpreter that finalizes while one does (Ctrl-C at the prompt) dies on that lock instead
of exiting. :class:`StdinSource` asks the loop to call it when the descriptor is readable
(a terminal, a pipe, a socket) and then reads what is there with one ``os.read``, which
never waits. A regular file or ``/dev/null`` cannot be watched (epoll refuses them) but
never makes a read wait either: their bytes are read a chunk per loop turn.

:class:`LineSplitter` cuts those bytes into lines, as the terminal's own line editing or a
pipe delivers them; the console's line editor (:mod:`connectors.console.editor`) does
the same for a terminal whose keys it reads one by one.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import os
from collections.abc import Callable
from typing import BinaryIO, Final

log = logging.getLogger(__name__)

CHUNK: Final = 65536


class _State(enum.Enum):
    NEW = "new"
    READING = "reading"
    DONE = "done"


class StdinSource:
    """Hands each chunk of ``stream``'s bytes to ``on_data`` and its end to ``on_end``
    (once), from the running loop; :meth:`stop` ends the reading without calling it."""

    def __init__(
        self,
        stream: BinaryIO,
        on_data: Callable[[bytes], None],
        on_end: Callable[[], None],
    ) -> None:
        self._stream = stream
        self._on_data = on_data
        self._on_end = on_end
        self._state = _State.NEW
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd: int | None = None
        self._watched = False

    def start(self) -> None:
        if self._state is not _State.NEW:
            raise RuntimeError("stdin is read once")
        self._state = _State.READING
        self._loop = asyncio.get_running_loop()
        try:
            self._fd = self._stream.fileno()
        except (OSError, ValueError):
            self._fd = None  # an object with no descriptor: read it as a file
        if self._fd is not None:
            try:
                self._loop.add_reader(self._fd, self._readable)
            except (PermissionError, ValueError, OSError):
                pass  # a regular file or /dev/null: never waits, read a chunk per turn
            else:
                self._watched = True
                return
        self._loop.call_soon(self._read_on)

    def stop(self) -> None:
        """Stop reading; ``on_end`` is not called."""
        self._finish(announce=False)

    def _readable(self) -> None:
        if self._state is _State.READING:
            self._take(self._read())

    def _read_on(self) -> None:
        """A descriptor the loop cannot watch: one chunk now, the next one turn later."""
        if self._state is not _State.READING:
            return
        if self._take(self._read()) and self._loop is not None:
            self._loop.call_soon(self._read_on)

    def _read(self) -> bytes | None:
        """What is there (``b""`` at the end), or ``None`` when nothing is after all."""
        try:
            if self._fd is not None:
                return os.read(self._fd, CHUNK)
            return self._stream.read(CHUNK) or b""
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            # EIO: the terminal hung up. Anything else is as good as the end, too.
            if exc.errno != errno.EIO:
                log.warning("reading stdin failed (%s); taking it as the end of input", exc)
            return b""
        except ValueError:  # closed under us
            return b""

    def _take(self, data: bytes | None) -> bool:
        """Hand ``data`` on; whether reading goes on."""
        if data is None:
            return True
        if not data:
            self._finish(announce=True)
            return False
        self._on_data(data)
        return self._state is _State.READING

    def _finish(self, *, announce: bool) -> None:
        if self._state is _State.DONE:
            return
        started = self._state is _State.READING
        self._state = _State.DONE
        if self._watched and self._loop is not None and self._fd is not None:
            self._watched = False
            if not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
        if announce and started:
            self._on_end()


class LineSplitter:
    """Bytes to lines: each ``\\n`` (a ``\\r`` before it dropped) ends one; at the end of
    input, what is left without a newline is the last line."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        """The lines ``data`` completes."""
        *done, self._pending = (self._pending + data).split(b"\n")
        return [_text(raw) for raw in done]

    def end(self) -> list[str]:
        """The last line, when the input ended without a newline."""
        rest, self._pending = self._pending, b""
        return [_text(rest)] if rest else []


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")
