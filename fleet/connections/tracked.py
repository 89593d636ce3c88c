"""One connection of a loopback server: aiohttp's handler for it, with the admission told
when it opens and ends — and, on a server with a :class:`Lane`, the requests the lane
knows answered without aiohttp.

A lane is for the one request a server takes most, many times a second from a fleet (a
heartbeat: a few hundred bytes, answered with a status): aiohttp's parse, request and
response objects and middlewares cost more than the work itself. While a connection has
given aiohttp no bytes, each chunk that is one whole request the lane knows is answered by
the lane, within the same caps (:meth:`Admission.enter`); the first chunk it does not know
— a request cut in two, two at once, another path, anything odd — goes to aiohttp, and
the connection is aiohttp's from then on, so aiohttp always starts at a request's first
byte. What comes while the lane answers waits until its answer is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp.web_protocol import RequestHandler


@dataclass(frozen=True, slots=True)
class Taken:
    """A request a lane answers: whose it is (its token checked), and what answers it —
    the raw HTTP answer, once the request's work is done."""

    agent: str
    answer: Callable[[], Awaitable[bytes]]


class Lane(Protocol):
    def take(self, data: bytes) -> Taken | None:
        """``data``, from a request's first byte: the request it is, when it is all of one
        request this lane answers; ``None`` hands it to aiohttp, which answers it as it
        would without the lane."""


class Admits(Protocol):
    """What a connection tells its server's admission
    (:class:`fleet.connections.admission.Admission`)."""

    refusal: bytes

    def kept(self, handler: RequestHandler) -> bool: ...

    def arrived(self, handler: RequestHandler, transport: asyncio.BaseTransport) -> bool: ...

    def enter(self, protocol: RequestHandler, agent: str) -> bool: ...

    def leave(self, protocol: RequestHandler, agent: str) -> None: ...

    def keep(self, answering: Awaitable[None]) -> None: ...

    def lost(self, handler: RequestHandler) -> None: ...


class Tracked(asyncio.Protocol):
    """aiohttp's handler for one connection, with admission told when it opens and ends."""

    __slots__ = ("_admission", "_held", "_inner", "_lane", "_made", "_transport")

    def __init__(self, inner: RequestHandler, admission: Admits, lane: Lane | None) -> None:
        self._inner = inner
        self._admission = admission
        self._made = False
        self._lane = lane  # None once aiohttp has had bytes of this connection
        self._held: bytearray | None = None  # what came while the lane answers
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._admission.kept(self._inner):
            transport.close()  # it made room for another before it was made
            return
        if not self._admission.arrived(self._inner, transport):
            Refused(self._admission.refusal).connection_made(transport)
            return
        self._made = True
        if isinstance(transport, asyncio.Transport):
            self._transport = transport
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._lane is not None:
            if self._held is not None:
                self._held += data
                return
            if self._take(self._lane, data):
                return
            self._lane = None
        self._inner.data_received(data)

    def _take(self, lane: Lane, data: bytes) -> bool:
        if self._transport is None:
            return False
        taken = lane.take(data)
        if taken is None or not self._admission.enter(self._inner, taken.agent):
            return False
        self._held = bytearray()
        self._admission.keep(self._answer(taken))
        return True

    async def _answer(self, taken: Taken) -> None:
        try:
            answer = await taken.answer()
        finally:
            self._admission.leave(self._inner, taken.agent)
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(answer)
        held, self._held = self._held, None
        if held:
            self.data_received(bytes(held))

    def eof_received(self) -> bool | None:
        self._inner.eof_received()
        return None  # close the transport, as aiohttp's handler asks

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        try:
            if self._made:
                self._inner.connection_lost(exc)
        finally:
            self._admission.lost(self._inner)


class Refused(asyncio.Protocol):
    """A connection past the cap: told so, and closed."""

    __slots__ = ("_answer",)

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._answer and isinstance(transport, asyncio.WriteTransport):
            transport.write(self._answer)
        transport.close()
