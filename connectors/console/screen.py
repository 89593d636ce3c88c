"""The console's interactive terminal: the prompt kept at the bottom, everything else
printed above it.

While the console is open at a terminal, :class:`Screen` owns what the terminal shows
below the last line printed: the prompt and the line being typed, drawn by it (the
terminal's echo is off, the keys are read one by one and edited by
:class:`connectors.console.editor.LineEditor`). Whatever else is printed — a reply, an
agent's output, a warning logged on stderr by any part of Fleetwarden, from any thread —
goes through :meth:`Screen.above`: the prompt line is erased, the text printed, and the
prompt and the half-typed line drawn again beneath it, so no line ever lands in the middle
of the prompt.

The terminal's settings are put back as they were when the screen closes, when the
process exits without closing it, and while Fleetwarden is suspended (Ctrl-Z).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import termios
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from connectors.columns import text_width
from connectors.console.editor import Did, Edit, LineEditor

log = logging.getLogger(__name__)

_ERASE_DOWN = "\r\x1b[J"  # to the line's start, then erase it and everything below
_CLEAR_SCREEN = "\x1b[H\x1b[2J"
CLEARED = "(Ctrl-C cleared the line; `quit`, Ctrl-D or Ctrl-C on an empty line leaves)"


class TerminalMode:
    """The terminal at ``fd`` reading key by key with no echo (Ctrl-C read as a key, its
    other signals kept: Ctrl-Z, Ctrl-\\), and its settings as they were, put back."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._saved: list[Any] | None = None

    def enter(self) -> bool:
        """Whether the terminal took the key-by-key mode."""
        try:
            saved = termios.tcgetattr(self._fd)
            keys = termios.tcgetattr(self._fd)
            keys[3] &= ~(termios.ICANON | termios.ECHO)
            keys[6][termios.VINTR] = b"\x00"  # Ctrl-C as a key: the line's to clear
            keys[6][termios.VMIN] = 1
            keys[6][termios.VTIME] = 0
            termios.tcsetattr(self._fd, termios.TCSADRAIN, keys)
        except (termios.error, OSError) as exc:
            log.info("the terminal kept its own line editing: %s", exc)
            return False
        if self._saved is None:
            atexit.register(self.leave)  # an exit that never closed the console
        self._saved = saved
        return True

    def leave(self) -> None:
        saved, self._saved = self._saved, None
        if saved is None:
            return
        atexit.unregister(self.leave)
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)


class Screen:
    """The prompt and the typed line at the bottom of the terminal; text printed above."""

    def __init__(
        self, out: TextIO, prompt: str, interrupt: Callable[[], None] | None = None
    ) -> None:
        """``interrupt``: what Ctrl-C on an empty line does (the terminal's interrupt)."""
        self._out = out
        self._interrupt = interrupt
        self._prompt = prompt
        self._editor = LineEditor()
        self._lock = threading.RLock()  # log lines come from any thread
        self._open = False
        self._drawn = False  # the prompt and the line are on the screen now
        self._row = 0  # the cursor's row in them, from the prompt's

    def open(self) -> None:
        """Draw the prompt; from now on text goes above it."""
        with self._lock:
            self._open = True
            self._draw()
            self._flush()

    def close(self) -> None:
        """Erase the prompt and the typed line; text is printed as it comes again."""
        with self._lock:
            self._erase()
            self._open = False
            self._flush()

    def keys(self, data: bytes) -> list[str | None]:
        """Take typed ``data``: the lines it ended (``None`` for the end of input)."""
        ended: list[str | None] = []
        with self._lock:
            for edit in self._editor.feed(data):
                ended.extend(self._show(edit))
            self._flush()
        return ended

    def above(self, text: str) -> None:
        """Print ``text`` (its lines ended) above the prompt, and the prompt again under it."""
        with self._lock:
            self._erase()
            self._write(text if text.endswith("\n") else text + "\n")
            self._draw()
            self._flush()

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """The prompt away while the process is stopped (Ctrl-Z), drawn again after."""
        with self._lock:
            self._erase()
            self._flush()
            try:
                yield
            finally:
                self._draw()
                self._flush()

    def _show(self, edit: Edit) -> list[str | None]:
        if edit.did is Did.TYPED:
            if self._drawn:
                self._write(edit.text)
                self._row = self._cursor_row()
            else:
                self._draw()
        elif edit.did is Did.ENTERED:
            self._erase()
            self._write(f"{self._prompt}{edit.text}\n")  # what was typed stays on screen
            self._draw()
            return [edit.text]
        elif edit.did is Did.ENDED:
            return [None]
        elif edit.did is Did.INTERRUPTED:
            self._interrupted(edit.text)
        elif edit.did is Did.CLEARED:
            self._write(_CLEAR_SCREEN)
            self._drawn, self._row = False, 0
            self._draw()
        else:
            self._erase()
            self._draw()
        return []

    def _interrupted(self, line: str) -> None:
        """Ctrl-C: a half-typed line left on screen as cleared, saying how to leave; on an
        empty line, the interrupt (Fleetwarden stops, as Ctrl-C always stopped it)."""
        if not line and self._interrupt is not None:
            self._interrupt()
            return
        self._erase()
        self._write(f"{self._prompt}{line}^C\n{CLEARED}\n")
        self._draw()

    def _draw(self) -> None:
        if not self._open or self._drawn:
            return
        self._write(self._prompt + self._editor.line)
        self._drawn, self._row = True, self._cursor_row()

    def _erase(self) -> None:
        if not self._drawn:
            return
        self._write((f"\x1b[{self._row}A" if self._row else "") + _ERASE_DOWN)
        self._drawn, self._row = False, 0

    def _cursor_row(self) -> int:
        """The row the cursor is on after the prompt and the line (a terminal keeps it on
        the last column of a full row until the next character comes)."""
        used = text_width(self._prompt + self._editor.line)
        return (used - 1) // terminal_columns(self._out) if used else 0

    def _write(self, text: str) -> None:
        # The terminal gone: keep running for the rest.
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._out.write(text)

    def _flush(self) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._out.flush()


def terminal_columns(out: TextIO) -> int:
    """The columns of the terminal ``out`` writes to (80 when it is not one)."""
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError):
        return 80
    return columns if columns > 0 else 80  # a terminal that was never given a size


class _Above:
    """A stream for a log handler: each line written goes above the prompt."""

    def __init__(self, screen: Screen) -> None:
        self._screen = screen
        self._pending = ""

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        if lines:
            self._screen.above("\n".join(lines) + "\n")
        return len(text)

    def flush(self) -> None:
        pass


class LogsAbove:
    """Log handlers that print on the console's terminal (the stderr warnings), sent
    through the screen while it is open, and given their stream back after."""

    def __init__(self, screen: Screen, terminal: TextIO) -> None:
        self._screen = screen
        self._terminal = terminal
        self._moved: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []

    def start(self) -> None:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ):
                stream = handler.stream
                if _same_terminal(stream, self._terminal):
                    handler.setStream(_Above(self._screen))
                    self._moved.append((handler, stream))

    def stop(self) -> None:
        moved, self._moved = self._moved, []
        for handler, stream in moved:
            handler.setStream(stream)


def _same_terminal(stream: object, terminal: TextIO) -> bool:
    """Whether ``stream`` writes to the terminal ``terminal`` writes to."""
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
        return bool(os.isatty(fd) and os.path.samestat(os.fstat(fd), os.fstat(terminal.fileno())))
    except (AttributeError, OSError, ValueError):
        return False
