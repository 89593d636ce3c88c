"""An incremental parser for server-sent events, fed the bytes of a stream as they arrive.

It never changes or withholds what it is fed: each :class:`SseEvent` keeps its exact
``raw`` bytes, so a caller that forwards events one by one forwards the stream unchanged.
A stream that stops making sense (an event over :data:`MAX_EVENT` bytes) is marked
``broken`` and from then on only passed along, never parsed. Given a ``count`` pattern, it
also sums the length of the pattern's group over every match in the events it has cut
(skipped ones too), one search per chunk: the text of the deltas, so a stream cut before
its usage arrives is still counted at what passed (:mod:`fleet.metering.meter`).
"""

from __future__ import annotations

import re
from typing import Final

MAX_EVENT: Final = 8 * 1024 * 1024  # bytes; Anthropic's largest events are far smaller
_NAME_LINE: Final = re.compile(rb"^event: ?([^\n]*)", re.MULTILINE)
_LINE_END: Final = re.compile(rb"[\r\n]")
_CR: Final = ord("\r")
_LF: Final = ord("\n")


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
    everything buffered when the parser broke.

    Lines may end in LF, CRLF or CR, mixed in one stream, and an empty line ends an event.
    Each byte is looked at once: what is buffered is never copied or scanned again when
    more arrives, so an event costs time linear in its size however it is cut. A CR that
    ends a chunk may be the first half of a CRLF: in a stream whose last line ended in a
    bare CR it ends its line at once (an LF right after it is then taken as its second
    half), otherwise it is decided when the next byte comes."""

    def __init__(
        self,
        skip: tuple[bytes, ...] = (),
        *,
        max_event: int | None = None,
        count: re.Pattern[bytes] | None = None,
    ) -> None:
        self._skip = skip  # events starting with one of these are not returned at all
        self._count = count
        self.counted = 0  # bytes ``count``'s group matched in the events so far
        self._max = MAX_EVENT if max_event is None else max_event
        self._buffer = bytearray()  # the event being read, from its first byte
        self._scan = 0  # where in the buffer the search for line ends goes on
        self._line = 0  # where the current line starts
        self._carriage = False  # a CR was seen: lines may end in CR too
        self._bare_cr = False  # the last line ended in a CR alone
        self._half_crlf = False  # the last chunk ended in a CR taken as a line end
        self.broken: str | None = None  # why parsing stopped, once it has

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self.broken is not None:
            return []
        buffer = self._buffer
        start, line, scan = 0, self._line, self._scan
        if self._half_crlf and chunk[:1] == b"\n":
            line = scan = len(buffer) + 1  # the rest of a CRLF whose CR ended a line
        if chunk:
            self._half_crlf = False
        buffer += chunk
        if not self._carriage and b"\r" in chunk:
            self._carriage = True
        events: list[SseEvent] = []
        size = len(buffer)
        while True:
            if self._carriage:
                found = _LINE_END.search(buffer, scan)
                at = -1 if found is None else found.start()
            else:
                at = buffer.find(b"\n", scan)
            if at < 0:
                scan = size
                break
            if buffer[at] == _CR and at + 1 == size:  # maybe half of a CRLF
                if not self._bare_cr:
                    scan = at
                    break
                end, self._half_crlf = size, True
            elif buffer[at] == _CR:
                end = at + 2 if buffer[at + 1] == _LF else at + 1
                self._bare_cr = end == at + 1
            else:
                end, self._bare_cr = at + 1, False
            if at == line:  # an empty line: the event ends here
                if not (self._skip and buffer.startswith(self._skip, start)):
                    events.append(SseEvent(bytes(buffer[start:end])))
                start = end
            line = scan = end
        if start:
            if self._count is not None:  # over the events just completed, in one call
                self.counted += sum(map(len, self._count.findall(buffer, 0, start)))
            del buffer[:start]  # a prefix: cheap, and what stays came in this chunk
        self._line, self._scan = line - start, scan - start
        if len(buffer) > self._max:
            self.broken = f"an event longer than {self._max} bytes"
        return events

    def finish(self) -> bytes:
        """What is left over: the start of an event the stream never finished."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._line = self._scan = 0
        self._half_crlf = False
        return rest


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
