"""The console's line editor: the keys typed at the terminal, one by one, made into lines.

At an interactive terminal the console reads keys itself rather than leaving the line to
the terminal's own editing, so that it always knows what is typed and can print a log line
or a reply above the prompt and draw the prompt and the half-typed line again beneath.
It edits as the terminal would: characters are added at the end; Backspace takes the last
one back, Ctrl-U the whole line, Ctrl-W the last word; Enter ends the line; Ctrl-D on an
empty line ends the input; Ctrl-L clears the screen. An escape sequence (an arrow key, a
function key) is swallowed whole, as is any other control character: nothing typed
reaches the line that the line would not show as text. A tab is a space.

Ctrl-C on a half-typed line clears it (the terminal hands Ctrl-C over as a key while the
console reads keys); on an empty line it is the interrupt it always was. Ctrl-Z and
Ctrl-\\ stay the terminal's: they signal the process as they always do.

:class:`LineEditor` is pure: it takes bytes and returns what happened, in order.
"""

from __future__ import annotations

import codecs
import enum
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass


class Did(enum.Enum):
    """What a key did to the line."""

    TYPED = "typed"  # ``text`` was added at the end of the line
    CHANGED = "changed"  # the line changed otherwise: draw it again
    ENTERED = "entered"  # the line ``text`` was ended with Enter; the line is empty again
    ENDED = "ended"  # end of input (Ctrl-D on an empty line)
    INTERRUPTED = "interrupted"  # Ctrl-C: ``text`` was the line, now empty
    CLEARED = "cleared"  # clear the screen, then draw the line again


@dataclass(frozen=True, slots=True)
class Edit:
    did: Did
    text: str = ""


class _Escape(enum.Enum):
    NONE = "none"
    ESC = "esc"  # after ESC
    CSI = "csi"  # after ESC [ : until a final byte
    SS3 = "ss3"  # after ESC O : one more character


_BACKSPACES = frozenset({"\x7f", "\x08"})
_CTRL_C, _CTRL_D, _CTRL_L, _CTRL_U, _CTRL_W = "\x03", "\x04", "\x0c", "\x15", "\x17"
_ESC = "\x1b"


class LineEditor:
    """The line being typed, and what each key does to it."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._chars: list[str] = []
        self._escape = _Escape.NONE
        self._after_cr = False

    @property
    def line(self) -> str:
        """What is typed so far."""
        return "".join(self._chars)

    def feed(self, data: bytes) -> list[Edit]:
        """What the keys in ``data`` did, in order; runs of typed text come as one edit."""
        edits: list[Edit] = []
        for char in self._decoder.decode(data):
            edit = self._key(char)
            if edit is None:
                continue
            if edit.did is Did.TYPED and edits and edits[-1].did is Did.TYPED:
                edits[-1] = Edit(Did.TYPED, edits[-1].text + edit.text)
            else:
                edits.append(edit)
            if edit.did is Did.ENDED:
                break  # nothing is read after the end of input
        return edits

    def _key(self, char: str) -> Edit | None:
        if self._escape is not _Escape.NONE:
            self._swallow(char)
            return None
        after_cr, self._after_cr = self._after_cr, char == "\r"
        if char in "\r\n":
            if char == "\n" and after_cr:
                return None  # CR LF, as a paste may bring: one Enter
            line, self._chars = self.line, []
            return Edit(Did.ENTERED, line)
        if char == _ESC:
            self._escape = _Escape.ESC
            return None
        if char in _BACKSPACES:
            return self._erase(_last_character)
        if char == _CTRL_U:
            return self._erase(len)
        if char == _CTRL_W:
            return self._erase(_last_word)
        if char == _CTRL_C:
            line, self._chars = self.line, []
            return Edit(Did.INTERRUPTED, line)
        if char == _CTRL_D:
            return Edit(Did.ENDED) if not self._chars else None
        if char == _CTRL_L:
            return Edit(Did.CLEARED)
        if char == "\t":
            char = " "
        if unicodedata.category(char) in ("Cc", "Cf") or char == "\ufffd":
            return None  # a control, a hidden format character, or a byte not UTF-8
        self._chars.append(char)
        return Edit(Did.TYPED, char)

    def _erase(self, count: Callable[[list[str]], int]) -> Edit | None:
        taken = count(self._chars)
        if not taken:
            return None
        del self._chars[len(self._chars) - taken :]
        return Edit(Did.CHANGED)

    def _swallow(self, char: str) -> None:
        """One character of an escape sequence: ESC [ … final, ESC O x, or ESC x."""
        if self._escape is _Escape.ESC:
            self._escape = {"[": _Escape.CSI, "O": _Escape.SS3}.get(char, _Escape.NONE)
        elif self._escape is _Escape.SS3 or "\x40" <= char <= "\x7e":
            self._escape = _Escape.NONE


def _last_character(chars: list[str]) -> int:
    """The last character with the combining marks on it."""
    count = 0
    while count < len(chars) and unicodedata.combining(chars[-1 - count]):
        count += 1
    return min(count + 1, len(chars))


def _last_word(chars: list[str]) -> int:
    """The spaces at the end, and the word before them."""
    count = 0
    while count < len(chars) and chars[-1 - count] == " ":
        count += 1
    while count < len(chars) and chars[-1 - count] != " ":
        count += 1
    return count
