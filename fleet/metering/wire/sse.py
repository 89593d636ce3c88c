"""An incremental parser for server-sent events, fed the bytes of a stream as they arrive.

It never changes or withholds what it is fed: each :class:`SseEvent` keeps its exact
``raw`` bytes, so a caller that forwards events one by one forwards the stream unchanged.
A stream that stops making sense (an event over :data:`MAX_EVENT` bytes) is marked
``broken`` and from then on only passed along, never parsed. Given a ``count`` pattern, it
also sums the size of the text the pattern's group holds (a JSON string's inside, escapes
counted as what they stand for: :func:`text_size`) over every match in the events it has
cut (skipped ones too), one search per chunk: the text of the deltas, so a stream cut before
its usage arrives is still counted at what passed (:mod:`fleet.metering.counting.meter`). Only a
stream that ends without its usage needs that sum, so the events are searched when it is
first asked for — held until then, :data:`COUNT_HELD` bytes at most, beyond which what is
held is counted at once and let go.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Final

MAX_EVENT: Final = 8 * 1024 * 1024  # bytes; Anthropic's largest events are far smaller
COUNT_HELD: Final = 256 * 1024  # bytes of cut events held for a count not yet asked for
_NAME_LINE: Final = re.compile(rb"^event: ?([^\n]*)", re.MULTILINE)
_LINE_END: Final = re.compile(rb"[\r\n]")
_STRING_DECODER: Final = json.JSONDecoder(strict=False)  # one, not one a call (json.loads)
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
        self._kept = _after_boundary(skip)
        self._count = count
        self._counted = 0  # bytes ``count``'s group matched in the events searched so far
        self._unsearched: list[bytes] = []  # cut events, each chunk's in one piece
        self._held = 0  # their bytes
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
        if not buffer and not self._carriage and self._one_event(chunk):
            # A whole event and nothing else, as a slow stream comes: nothing to buffer.
            if self._count is not None:
                self._hold(bytes(chunk))
            skip = self._skip
            return [] if skip and chunk.startswith(skip) else [SseEvent(bytes(chunk))]
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
        if self._carriage:
            start, line, scan = self._cut_lines(buffer, size, line, scan, events)
        else:
            start, line, scan = self._cut_lf(buffer, size, line, scan, events)
        if start:
            if self._count is not None:  # the events just completed, in one piece
                self._hold(bytes(buffer[:start]))
            del buffer[:start]  # a prefix: cheap, and what stays came in this chunk
        self._line, self._scan = line - start, scan - start
        if len(buffer) > self._max:
            self.broken = f"an event longer than {self._max} bytes"
        return events

    @property
    def counted(self) -> int:
        """UTF-8 bytes of the text ``count``'s group matched in the events cut so far
        (each chunk's events searched in one call, as they were cut)."""
        if self._unsearched:
            self._search()
        return self._counted

    def _hold(self, events: bytes) -> None:
        self._unsearched.append(events)
        self._held += len(events)
        if self._held > COUNT_HELD:
            self._search()

    def _search(self) -> None:
        assert self._count is not None
        findall = self._count.findall
        self._counted += sum(text_size(findall(piece)) for piece in self._unsearched)
        self._unsearched.clear()
        self._held = 0

    @staticmethod
    def _one_event(chunk: bytes) -> bool:
        """Whether ``chunk`` is exactly one event whose lines end in LF."""
        return (
            chunk[-2:] == b"\n\n"
            and chunk.find(b"\n\n") == len(chunk) - 2
            and chunk[0] != _LF
            and b"\r" not in chunk
        )

    def _cut_lines(
        self, buffer: bytearray, size: int, line: int, scan: int, events: list[SseEvent]
    ) -> tuple[int, int, int]:
        """Cut events a line at a time, lines ending in LF, CRLF or CR. Returns where the
        unfinished event starts, where its current line starts and where scanning stopped."""
        start = 0
        while True:
            found = _LINE_END.search(buffer, scan)
            if found is None:
                return start, line, size
            at = found.start()
            if buffer[at] == _CR and at + 1 == size:  # maybe half of a CRLF
                if not self._bare_cr:
                    return start, line, at
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

    def _cut_lf(
        self, buffer: bytearray, size: int, line: int, scan: int, events: list[SseEvent]
    ) -> tuple[int, int, int]:
        """Cut the events of a stream whose lines all end in LF (nearly every stream), a
        chunk at a time, not a line at a time: an event ends at its first empty line, so
        the complete events end at the last ``\n\n``, and only the events not skipped
        are looked for (:func:`_kept_starts`). Returns where the unfinished event starts,
        where its current line starts and where scanning stopped, as the line-by-line cut
        leaves them (a CR arriving later carries on from there)."""
        last = buffer.rfind(b"\n\n", scan - 1 if scan else 0)
        lead = size > 0 and buffer[0] == _LF
        if last < 0 and not lead:
            cut = buffer.rfind(b"\n", scan, size)
            return 0, cut + 1 if cut >= 0 else line, size
        if lead or buffer.find(b"\n\n\n", 0, last + 3) >= 0:
            # Empty events (an empty line right after another event's end): rare, and
            # framed one by one so that each is one event.
            return self._cut_each(buffer, size, line, scan, events)
        end = last + 2
        skip = self._skip
        if buffer.find(b"\n\n", 0, last) < 0:  # one event: most chunks of a slow stream
            if not (skip and buffer.startswith(skip)):
                events.append(SseEvent(bytes(buffer[:end])))
        else:
            starts = [] if skip and buffer.startswith(skip) else [0]
            starts += [m.end() for m in self._kept.finditer(buffer, 0, last)]
            for begin in starts:
                stop = buffer.find(b"\n\n", begin) + 2
                events.append(SseEvent(bytes(buffer[begin:stop])))
        cut = buffer.rfind(b"\n", end, size)
        return end, cut + 1 if cut >= 0 else end, size

    def _cut_each(
        self, buffer: bytearray, size: int, line: int, scan: int, events: list[SseEvent]
    ) -> tuple[int, int, int]:
        """:meth:`_cut_lf` one event at a time, for a chunk with empty events: an event
        ends at its first empty line — a ``\n\n``, or a ``\n`` it starts with."""
        start, seen = 0, scan  # what was scanned before this chunk is not looked at again
        skip = self._skip
        while True:
            if start < size and buffer[start] == _LF:
                end = start + 1
            else:
                at = buffer.find(b"\n\n", max(scan - 1, start))
                if at < 0:
                    break
                end = at + 2
            if not (skip and buffer.startswith(skip, start)):
                events.append(SseEvent(bytes(buffer[start:end])))
            start = scan = end
        cut = buffer.rfind(b"\n", max(start, seen), size)
        return start, cut + 1 if cut >= 0 else max(line, start), size

    def finish(self) -> bytes:
        """What is left over: the start of an event the stream never finished."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._line = self._scan = 0
        self._half_crlf = False
        return rest


@functools.cache
def _after_boundary(skip: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """An event's end followed by an event not starting with one of ``skip``: one search
    over a chunk finds the events to keep, so the skipped ones (the bulk of a stream)
    cost no Python step each."""
    if not skip:
        return re.compile(rb"\n\n")
    return re.compile(rb"\n\n(?!" + b"|".join(re.escape(prefix) for prefix in skip) + rb")")


def text_size(texts: list[bytes]) -> int:
    """The UTF-8 bytes of the text that ``texts``, the insides of JSON strings, stand for:
    an escape counts as the character it stands for (``\\u00e9`` as the two bytes of
    ``é``, ``\\n`` as one), so text sent escaped (``json.dumps``' default) counts as the
    same text sent as it is. All of them are measured, or decoded, together: one call."""
    joined = b"".join(texts)  # each a whole run of characters and escapes
    if b"\\" not in joined:
        return len(joined)
    try:
        return _decoded_size(joined)
    except (ValueError, RecursionError):  # one is not JSON after all: each on its own
        return sum(_size_or_bytes(text) for text in texts)


def _decoded_size(text: bytes) -> int:
    decoded: str = _STRING_DECODER.decode('"' + text.decode("utf-8") + '"')
    return len(decoded.encode("utf-8", "surrogatepass"))


def _size_or_bytes(text: bytes) -> int:
    try:
        return _decoded_size(text)
    except (ValueError, RecursionError):
        return len(text)  # its bytes as they came


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
