"""Reading an agent's output log: its last lines, and the lines written since an offset, in
time and memory bounded by what is asked, whatever the file holds.

Lines end at ``\\n``, ``\\r\\n`` or a bare ``\\r``. A bare ``\\r`` is how a progress bar
rewrites its line on a terminal, so of the lines it ends only the last state counts: the
lines a bare ``\\r`` ends and the line closing them (at ``\\n``, or where the output ends)
read as one line, the last of them that has any text — what the terminal showed. A 33 MB
progress bar without a ``\\n`` is one line, its last state.

No call reads more than ``max_read`` bytes, nor keeps more than ``max_line`` bytes of one
line: a longer line is cut (:attr:`Line.cut`), its true size kept (:attr:`Line.size`).

Every function here does blocking file I/O: code on the event loop runs them with
:func:`asyncio.to_thread`.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, replace
from pathlib import Path

BLOCK = 64 * 1024
MAX_READ = 4 * 1024 * 1024
"""Bytes one call reads at most (the tail's window; the follower's step)."""
MAX_LINE = 1024 * 1024
"""Bytes of one line kept; a longer line is cut. A CLI's JSON event with a whole file in it
runs to a few hundred KiB, and its parser needs it whole."""


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a log, without its line break, decoded leniently (bad UTF-8 becomes
    U+FFFD). ``cut``: it is longer than the reader keeps, ``text`` is its first part and
    ``size`` its true length in bytes. ``whole`` is false only for the first line of a tail
    that reached its byte cap inside that line: ``text`` is then from its middle and
    ``size`` a lower bound."""

    text: str
    size: int
    cut: bool = False
    whole: bool = True


@dataclass(frozen=True, slots=True)
class Tail:
    """The end of a log: ``lines`` oldest first; ``start``, the byte offset reading began
    at (0: the log's beginning); ``capped``, reading stopped at its byte cap with fewer
    lines than asked for."""

    lines: tuple[Line, ...]
    start: int
    size: int
    capped: bool


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a follower stands in a log: the next byte to read (a line held back for its
    break starts there), the last state of a line a bare ``\\r`` ended (shown once its line
    closes, unless a later state replaces it), and a line longer than ``max_line`` being
    read past (its head and its size so far: ``offset`` lies inside it)."""

    offset: int = 0
    state: Line | None = None
    long: Line | None = None


@dataclass(frozen=True, slots=True)
class Followed:
    """What one call of :func:`follow` found: the complete lines, where to read next, and
    whether the log holds more than one call reads (call again without waiting)."""

    lines: tuple[Line, ...]
    cursor: Cursor
    more: bool


def tail(path: Path, count: int, *, max_read: int = MAX_READ, max_line: int = MAX_LINE) -> Tail:
    """The last ``count`` lines of ``path``, reading at most ``max_read`` bytes back from its
    end; no lines if it does not exist. The last line counts even without its break."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return Tail((), 0, 0, capped=False)
    try:
        size = os.fstat(fd).st_size
        if count <= 0:
            return Tail((), size, size, capped=False)
        blocks: list[bytes] = []
        pos, breaks = size, 0
        # One more break than lines: the earliest line must be seen from its start.
        while pos > 0 and breaks <= count and size - pos < max_read:
            step = min(BLOCK, pos, max_read - (size - pos))
            pos -= step
            block = os.pread(fd, step, pos)
            blocks.append(block)
            breaks += block.count(b"\n")
    finally:
        os.close(fd)
    data = b"".join(reversed(blocks))
    lines = _last_lines(data, count, begins=pos == 0, max_line=max_line)
    return Tail(tuple(lines), pos, size, capped=pos > 0 and len(lines) < count)


def tail_lines(path: Path, count: int) -> list[str]:
    """The text of the last ``count`` lines of ``path``; ``[]`` if it does not exist."""
    return [line.text for line in tail(path, count).lines]


def follow(
    path: Path,
    cursor: Cursor,
    *,
    final: bool = False,
    max_read: int = MAX_READ,
    max_line: int = MAX_LINE,
) -> Followed:
    """The lines completed in ``path`` since ``cursor``, reading at most ``max_read`` bytes.

    A line is complete once its break is written: the part of a line still being written
    stays behind the returned cursor, to be read whole by a later call, so a line is never
    returned in two pieces; a line a bare ``\r`` rewrites comes out once, its last state,
    when it closes. ``final`` says nothing more will be written (the run ended): what is
    left is then a line of its own. A log shorter than the cursor (cut, or replaced) is
    followed from its new end."""
    if max_read < max_line + 2:  # room for a line too long and its break: every call moves on
        raise ValueError(f"max_read ({max_read}) must exceed max_line ({max_line}) + 1")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return Followed((), cursor, more=False)
    try:
        size = os.fstat(fd).st_size
        if cursor.offset > size:
            return Followed((), Cursor(size), more=False)
        data = os.pread(fd, min(max_read, size - cursor.offset), cursor.offset)
    finally:
        os.close(fd)
    more = cursor.offset + len(data) < size
    lines, used, state, long = _next_lines(data, cursor, final and not more, max_line)
    return Followed(tuple(lines), Cursor(cursor.offset + used, state, long), more)


def read_from(path: Path, offset: int, limit: int = 256 * 1024) -> str:
    """Text appended to ``path`` after byte ``offset`` (at most ``limit`` bytes; a character
    the limit cuts in two is left out)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(limit)
    except FileNotFoundError:
        return ""
    return _decode(data, cut=len(data) == limit)


def size_of(path: Path) -> int:
    """The file's size in bytes, 0 if it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# -- the line rules --------------------------------------------------------------------------


def _last_lines(data: bytes, count: int, *, begins: bool, max_line: int) -> list[Line]:
    """The last ``count`` lines of ``data``, the end of a log (its start when ``begins``)."""
    lines: list[Line] = []
    if not data:
        return lines
    closed = data.endswith(b"\n")  # an unfinished last line without text is no line yet
    stop = len(data) - 1 if closed else len(data)
    while len(lines) < count:
        newline = data.rfind(b"\n", 0, stop)
        first = newline + 1
        known = newline >= 0 or begins  # the line's start lies in what was read
        found = _last_state(data, first, stop)
        if found is not None:
            start, end = found
            lines.append(_line(data, start, end, max_line, whole=known or start > first))
        elif known and closed:
            lines.append(Line("", 0))
        # else: nothing but bare \r's (of a line begun before what was read, or unfinished)
        if newline < 0:
            break
        stop, closed = newline, True
    lines.reverse()
    return lines


def _next_lines(
    data: bytes, cursor: Cursor, closing: bool, max_line: int
) -> tuple[list[Line], int, Line | None, Line | None]:
    """The lines ``data`` (read at ``cursor``) completes, how many of its bytes they used,
    and the cursor's new held state and long line. ``closing``: ``data`` ends the output."""
    lines: list[Line] = []
    state, long = cursor.state, cursor.long
    pos = 0
    while (newline := data.find(b"\n", pos)) >= 0:
        lines.append(_close(data, pos, newline, state, long, max_line))
        state = long = None
        pos = newline + 1
    if closing:
        if pos < len(data) or state is not None or long is not None:
            line = _close(data, pos, len(data), state, long, max_line)
            if line.size:
                lines.append(line)
        return lines, len(data), None, None
    # The open line: its parts a bare \r ended come down to one state; its last part waits
    # for its break, or is read past once it is longer than a line may be. A \r ending what
    # was read may be half of a \r\n: it is read again next time.
    stop = len(data) - 1 if data.endswith(b"\r") else len(data)
    last_cr = data.rfind(b"\r", pos, stop)
    if last_cr >= 0:
        found = _last_state(data, pos, last_cr + 1)
        if found is not None:
            start, end = found
            if start == pos and long is not None:
                state = _grow(long, end - start)
            else:
                state = _line(data, start, end, max_line)
        elif long is not None:
            state = long
        long = None
        pos = last_cr + 1
    if long is not None:
        long = _grow(long, stop - pos)
        pos = stop
    elif stop - pos > max_line:
        long, state = _line(data, pos, stop, max_line), None
        pos = stop
    return lines, pos, state, long


def _close(
    data: bytes, start: int, end: int, state: Line | None, long: Line | None, max_line: int
) -> Line:
    """The line ``data[start:end]`` closes: its last state with any text, counting the state
    and the long line held from before ``start``."""
    found = _last_state(data, start, end)
    if found is not None:
        first, last = found
        if first == start and long is not None:
            return _grow(long, last - first)
        return _line(data, first, last, max_line)
    if long is not None:
        return long
    return state if state is not None else Line("", 0)


def _last_state(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """Where in ``data[start:end]`` the last of its ``\\r``-separated parts with any text
    lies; ``None`` if it has none."""
    end = start + len(data[start:end].rstrip(b"\r"))
    if end == start:
        return None
    cr = data.rfind(b"\r", start, end)
    return (cr + 1 if cr >= 0 else start), end


def _line(data: bytes, start: int, end: int, max_line: int, *, whole: bool = True) -> Line:
    size = end - start
    cut = size > max_line
    head = data[start : start + min(size, max_line)]
    return Line(_decode(head, cut=cut, mid=not whole), size, cut, whole)


def _grow(line: Line, more: int) -> Line:
    return replace(line, size=line.size + more)


def _decode(data: bytes, *, cut: bool = False, mid: bool = False) -> str:
    """``data`` as text, bad bytes as U+FFFD; a character cut at the start (``mid``) or at
    the end (``cut``) is left out rather than shown as U+FFFD."""
    if mid:
        skip = 0
        while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
            skip += 1
        data = data[skip:]
    if not cut:
        return data.decode("utf-8", errors="replace")
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=False)
