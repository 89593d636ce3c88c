"""An HTTP server's answers read within the cap, below the SDK's streamable HTTP client.

The SDK reads a JSON answer whole (``Response.aread``) before anything looks at its size,
so a server answering a gigabyte had the door hold a gigabyte. Here each response's body is
counted as it streams, under the SDK (an httpx event hook puts a counting stream in place of
the response's own before anything reads it): a JSON body (any body but an event stream)
over :data:`~fleet.mcp.wire.MAX_MESSAGE` bytes, or one event of an event stream over it
(counted as the SDK's parser counts an event: its lines but comments), is cut at the chunk
that crosses, before that chunk is handed on. The SDK answers a request whose answer was
cut with an error of its own; :class:`fleet.mcp.upstream.capped.Cuts` remembers that request, so
the session is told ``too_large`` instead.

Every request asks for its answer uncompressed (``Accept-Encoding: identity``) and an
answer compressed anyway is refused: a few kilobytes of gzip may inflate to gigabytes,
which no count of the bytes read would see."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Final

import httpx2

from fleet.mcp.upstream.capped import Cuts
from fleet.mcp.wire import MAX_MESSAGE

log = logging.getLogger(__name__)

EVENT_STREAM: Final = "text/event-stream"
_TERMINATOR: Final = re.compile(rb"\r\n|\r|\n")


class BodyTooLarge(httpx2.StreamError):
    """A body over the cap: a stream error, which the SDK answers its request with."""


class EventTooLarge(httpx2.SSEError):
    """An event over the cap: an event stream's error, which the SDK answers its request
    with (rather than reconnecting to be sent it again)."""


class Compressed(httpx2.SSEError, httpx2.StreamError):
    """An answer compressed though it was asked for uncompressed."""


class BodyCount:
    """The bytes of a body so far; :meth:`over` once they pass ``cap``."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._read = 0

    def over(self, chunk: bytes) -> bool:
        self._read += len(chunk)
        return self._read > self._cap


class EventCount:
    """The bytes of an event stream's event being read, counted as httpx's parser counts
    them (the bytes of its lines that are not comments, the line not yet ended among them;
    an empty line ends the event); :meth:`over` once they pass ``cap``. Nothing is kept but
    counts."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._event = 0  # bytes of the event's ended lines
        self._line = 0  # bytes of the line not yet ended
        self._comment = False  # whether that line is a comment (it starts with ":")
        self._cr = False  # the last chunk ended with "\r": a "\n" next is the same line end

    def over(self, chunk: bytes) -> bool:
        start = 0
        if self._cr and chunk.startswith(b"\n"):
            start = 1
        self._cr = chunk.endswith(b"\r")
        for end in _TERMINATOR.finditer(chunk, start):
            self._text(chunk, start, end.start())
            if self._line == 0:
                self._event = 0  # an empty line: the event ends
            elif not self._comment:
                self._event += self._line
            self._line, self._comment = 0, False
            if self._event > self._cap:
                return True
            start = end.end()
        self._text(chunk, start, len(chunk))
        return self._event + (0 if self._comment else self._line) > self._cap

    def _text(self, chunk: bytes, start: int, end: int) -> None:
        if end > start and self._line == 0:
            self._comment = chunk[start : start + 1] == b":"
        self._line += end - start


class CappedStream(httpx2.AsyncByteStream):
    """``inner``'s chunks until ``count`` says one is over the cap: then ``cut`` is told
    and ``error`` raised instead of that chunk."""

    def __init__(
        self,
        inner: httpx2.AsyncByteStream,
        count: BodyCount | EventCount,
        cut: Callable[[], None],
        error: Exception,
    ) -> None:
        self._inner = inner
        self._count = count
        self._cut = cut
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            if self._count.over(chunk):
                self._cut()
                raise self._error
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class Refused(httpx2.AsyncByteStream):
    """A body not read: ``error`` raised at its first read."""

    def __init__(self, inner: httpx2.AsyncByteStream, error: Exception) -> None:
        self._inner = inner
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        raise self._error
        yield b""  # an async generator, as httpx iterates it

    async def aclose(self) -> None:
        await self._inner.aclose()


def cap_answers(
    client: httpx2.AsyncClient, cuts: Cuts, *, cap: int = MAX_MESSAGE
) -> httpx2.AsyncClient:
    """``client``, made to ask for answers uncompressed and to read each within ``cap``
    bytes (an event stream: each event), a request whose answer was cut added to
    ``cuts``."""

    async def uncompressed(request: httpx2.Request) -> None:
        request.headers["Accept-Encoding"] = "identity"

    async def capped(response: httpx2.Response) -> None:
        if not isinstance(response.stream, httpx2.AsyncByteStream):
            return
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            why = f"the MCP server compressed its answer ({encoding[:20]!r}) though asked not to"
            response.stream = Refused(response.stream, Compressed(why))
            return
        kind = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        error: Exception
        if kind == EVENT_STREAM:
            count: BodyCount | EventCount = EventCount(cap)
            error = EventTooLarge(f"an event over {cap} bytes was cut")
        else:
            count = BodyCount(cap)
            error = BodyTooLarge(f"an answer over {cap} bytes was cut")

        def cut() -> None:
            log.warning("An MCP server sent a message over %d bytes: it was cut", cap)
            request_id = _id_of(response.request)
            if request_id is not None:
                cuts.add(request_id)

        response.stream = CappedStream(response.stream, count, cut, error)

    hooks = client.event_hooks
    client.event_hooks = {
        "request": [*hooks.get("request", []), uncompressed],
        "response": [*hooks.get("response", []), capped],
    }
    return client


def _id_of(request: httpx2.Request) -> str | int | None:
    """The id of the JSON-RPC request ``request`` posted (the door's own message)."""
    if request.method != "POST":
        return None
    try:
        sent = json.loads(request.content)
    except (httpx2.RequestNotRead, ValueError):
        return None
    found = sent.get("id") if isinstance(sent, dict) else None
    return found if isinstance(found, str | int) and not isinstance(found, bool) else None
