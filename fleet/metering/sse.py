"""An incremental parser for server-sent events, fed the bytes of a stream as they arrive.

It never changes or withholds what it is fed: each :class:`SseEvent` keeps its exact
``raw`` bytes, so a caller that forwards events one by one forwards the stream unchanged.
A stream that stops making sense (an event over :data:`MAX_EVENT` bytes) is marked
``broken`` and from then on only passed along, never parsed.
"""

from __future__ import annotations

import re
from typing import Final

MAX_EVENT: Final = 8 * 1024 * 1024  # bytes; Anthropic's largest events are far smaller
_NAME_LINE: Final = re.compile(rb"^event: ?([^\n]*)", re.MULTILINE)


class SseEvent:
    """One event: its exact bytes, its ``event:`` name (if any) and, read only when asked
    for, its ``data:`` lines joined. Most events of a stream are passed on without their
    data ever being looked at."""

    __slots__ = ("_data", "name", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.name: str | None = None
        self._data: bytes | None = None
        if b"\r" in raw:  # rare line endings: read it all now
            self.name, self._data = _parse(raw)
        elif raw.startswith(b"event:") or b"\nevent:" in raw:
            names = _NAME_LINE.findall(raw)
            self.name = names[-1].decode("utf-8", "replace")

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = _parse(self.raw)[1]
        return self._data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SseEvent):
            return NotImplemented
        return self.raw == other.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"SseEvent(name={self.name!r}, raw={self.raw!r})"


class SseParser:
    """Cuts a byte stream into events. ``feed`` returns the events completed so far (but
    those whose bytes start with one of the ``skip`` prefixes, the fast way to ignore the
    bulk of a stream);
    ``finish`` returns the bytes not yet part of an event: an unterminated last event, or
    everything buffered when the parser broke."""

    def __init__(self, skip: tuple[bytes, ...] = ()) -> None:
        self._skip = skip  # events starting with one of these are not returned at all
        self._buffer = b""
        self._carriage = False  # a \r was seen: lines may end in \r\n or \r
        self.broken: str | None = None  # why parsing stopped, once it has

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self.broken is not None:
            return []
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in chunk:
            self._carriage = True
        events: list[SseEvent] = []
        start = 0
        while True:
            end, width = (
                _boundary(buffer, start) if self._carriage else (buffer.find(b"\n\n", start), 2)
            )
            if end < 0:
                break
            if not (self._skip and buffer.startswith(self._skip, start)):
                events.append(SseEvent(buffer[start : end + width]))
            start = end + width
        self._buffer = buffer[start:]
        if len(self._buffer) > MAX_EVENT:
            self.broken = f"an event longer than {MAX_EVENT} bytes"
        return events

    def finish(self) -> bytes:
        """What is left over: the start of an event the stream never finished."""
        rest, self._buffer = self._buffer, b""
        return rest


def _boundary(buffer: bytes, start: int) -> tuple[int, int]:
    """Where the next blank line (end of event) begins, and its width; (-1, 0) if none.
    Each search stops where the best one so far ends, so a buffer is scanned once."""
    best, width = -1, 0
    for separator in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        limit = len(buffer) if best < 0 else best + len(separator)
        found = buffer.find(separator, start, limit)
        if found >= 0 and (best < 0 or found < best):
            best, width = found, len(separator)
    return best, width


def _parse(raw: bytes) -> tuple[str | None, bytes]:
    """An event's name and data, by the SSE rules: the last ``event:`` wins, ``data:``
    lines are joined with newlines, comments and other fields are ignored."""
    name: str | None = None
    data: list[bytes] = []
    for line in raw.splitlines():
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"event":
            name = value.decode("utf-8", "replace")
        elif field == b"data":
            data.append(value)
    return name, b"\n".join(data)
