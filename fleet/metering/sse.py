"""An incremental parser for server-sent events, fed the bytes of a stream as they arrive.

It never changes or withholds what it is fed: each :class:`SseEvent` keeps its exact
``raw`` bytes, so a caller that forwards events one by one forwards the stream unchanged.
A stream that stops making sense (an event over :data:`MAX_EVENT` bytes) is marked
``broken`` and from then on only passed along, never parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MAX_EVENT: Final = 8 * 1024 * 1024  # bytes; Anthropic's largest events are far smaller
_SEPARATORS: Final = (b"\n\n", b"\r\n\r\n", b"\r\r")


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One event: its ``event:`` name (if any), its ``data:`` lines joined, its bytes."""

    name: str | None
    data: bytes
    raw: bytes


class SseParser:
    """Cuts a byte stream into events. ``feed`` returns the events completed so far;
    ``finish`` returns the bytes not yet part of an event: an unterminated last event, or
    everything buffered when the parser broke."""

    def __init__(self) -> None:
        self._buffer = b""
        self.broken: str | None = None  # why parsing stopped, once it has

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self.broken is not None:
            return []
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[SseEvent] = []
        start = 0
        while True:
            end, width = _boundary(buffer, start)
            if end < 0:
                break
            raw = buffer[start : end + width]
            events.append(_event(raw))
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
    """Where the next blank line (end of event) begins, and its width; (-1, 0) if none."""
    best, width = -1, 0
    for separator in _SEPARATORS:
        found = buffer.find(separator, start)
        if found >= 0 and (best < 0 or found < best):
            best, width = found, len(separator)
    return best, width


def _event(raw: bytes) -> SseEvent:
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
    return SseEvent(name, b"\n".join(data), raw)
