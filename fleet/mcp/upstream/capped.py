"""What the door holds of a server's message at most: :data:`fleet.mcp.wire.MAX_MESSAGE`
bytes, counted as they are read (:mod:`fleet.mcp.upstream.capped_stdio`,
:mod:`fleet.mcp.upstream.capped_http`),
never after a whole message was taken in. A message past it is cut where it crossed, and
the request it answered is answered :class:`Cut` in its place: an error the session records
``too_large`` (:func:`error_outcome`), which no server can send (it is made on this side).

The SDK's streamable HTTP client answers a request whose answer was cut with an error in
its own words; :class:`Marked` puts the :class:`Cut` in its place."""

from __future__ import annotations

import re
from types import TracebackType
from typing import Final, Self

import anyio
from mcp.client._transport import ReadStream
from mcp.shared.message import SessionMessage
from mcp_types import INTERNAL_ERROR, ErrorData, JSONRPCError, RequestId

from fleet.mcp.hooks import Outcome
from fleet.mcp.wire import MAX_MESSAGE

HEAD: Final = 160
"""Bytes at the start of a message read for its id, when it is cut."""
_ID: Final = re.compile(
    rb'\A\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?[0-9]{1,18}|"[^"\\]{0,100}")'
)
CUT_WORDS: Final = f"the server's answer was not relayed: over {MAX_MESSAGE} bytes"


class Cut(JSONRPCError):
    """The answer to a request whose real answer was over the cap and was cut."""


def cut(request_id: RequestId) -> Cut:
    """The answer for ``request_id``, its answer cut."""
    return Cut(
        jsonrpc="2.0", id=request_id, error=ErrorData(code=INTERNAL_ERROR, message=CUT_WORDS)
    )


def error_outcome(message: JSONRPCError) -> Outcome:
    """How a call answered ``message`` ended: ``too_large`` when its answer was cut here,
    else ``error`` (the server's own)."""
    return Outcome.TOO_LARGE if isinstance(message, Cut) else Outcome.ERROR


def id_at_start(head: bytes) -> RequestId | None:
    """The id of a JSON-RPC message from its first bytes, when it leads the message (as
    ``{"jsonrpc": "2.0", "id": 7, …``); ``None`` when it is not there: an ``"id"`` further
    in may be a nested object's, so none is guessed."""
    found = _ID.match(head[:HEAD])
    if found is None:
        return None
    raw = found.group(1)
    if raw.startswith(b'"'):
        return raw[1:-1].decode("utf-8", "replace")
    return int(raw)


class Cuts:
    """The requests of one connection whose answer was cut at the cap, until the session
    is told."""

    def __init__(self) -> None:
        self._ids: set[RequestId] = set()

    def add(self, request_id: RequestId) -> None:
        self._ids.add(request_id)

    def take(self, request_id: RequestId | None) -> bool:
        """Whether ``request_id``'s answer was cut (then it is forgotten)."""
        if request_id is None or request_id not in self._ids:
            return False
        self._ids.discard(request_id)
        return True


class Marked:
    """``read``, each error a transport made up for a request in ``cuts`` given as the
    :class:`Cut` it stands for."""

    def __init__(self, read: ReadStream[SessionMessage | Exception], cuts: Cuts) -> None:
        self._read = read
        self._cuts = cuts

    async def receive(self) -> SessionMessage | Exception:
        item = await self._read.receive()
        if isinstance(item, SessionMessage) and isinstance(item.message, JSONRPCError):
            request_id = item.message.id
            if request_id is not None and self._cuts.take(request_id):
                return SessionMessage(cut(request_id))
        return item

    async def aclose(self) -> None:
        await self._read.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        return None
