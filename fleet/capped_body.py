"""The one reader of an HTTP body taken whole (a request to a door, an answer from a forge):
at most a cap of bytes, within a deadline.

:func:`read_capped` takes anything with aiohttp's ``content`` stream and
``content_length`` (a :class:`aiohttp.web.Request`, a :class:`aiohttp.ClientResponse`):

* **Size.** A body that says its length is refused before it is read when that is over
  the cap; any body is refused as soon as more than the cap has come (:class:`OverCap`,
  ``declared`` telling the two apart). Only the cap and one chunk are ever held.
* **Time.** With ``within``, the whole body must arrive within that many seconds:
  :class:`TimeoutError` otherwise, so a sender that trickles holds nothing forever.
* **Length.** With ``exact`` (a stream nothing decodes on the way), a body that says its
  length is read into one buffer of that size, with no copy, and refused
  (:class:`LengthMismatch`) if the stream carries more or less.

A connection lost on the way raises what aiohttp raises (``ClientPayloadError``,
``ConnectionError``): the caller knows whether that is its sender's failure or its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal, Protocol, overload

import aiohttp

from fleet.errors import FleetwardenError


class Body(Protocol):
    """An HTTP message whose body is read: a server's request or a client's answer."""

    @property
    def content(self) -> aiohttp.StreamReader: ...

    @property
    def content_length(self) -> int | None: ...


class OverCap(FleetwardenError):
    """A body over ``limit`` bytes: ``declared`` is the length it said it had when that
    refused it, ``None`` when it was found reading."""

    def __init__(self, limit: int, declared: int | None) -> None:
        said = f"says it has {declared} bytes" if declared is not None else "has more bytes"
        super().__init__(f"the body {said}, over the {limit} taken")
        self.limit = limit
        self.declared = declared


class LengthMismatch(FleetwardenError):
    """A body that does not match the length it said it had."""


@overload
async def read_capped(
    message: Body, limit: int, *, within: float | None = None, exact: Literal[False] = False
) -> bytes: ...


@overload
async def read_capped(
    message: Body, limit: int, *, within: float | None = None, exact: Literal[True]
) -> bytearray: ...


async def read_capped(
    message: Body, limit: int, *, within: float | None = None, exact: bool = False
) -> bytes | bytearray:
    """``message``'s whole body, at most ``limit`` bytes, read within ``within`` seconds
    (no deadline: ``None``); :class:`OverCap`, :class:`TimeoutError` or
    :class:`LengthMismatch` (``exact`` only) when refused."""
    declared = message.content_length
    if declared is not None and declared > limit:
        raise OverCap(limit, declared)
    deadline = asyncio.timeout(within) if within is not None else contextlib.nullcontext()
    async with deadline:
        if exact and declared:
            return await _exactly(message.content, declared)
        grown = await _grown(message.content, limit)
    return grown if exact else bytes(grown)


async def _exactly(content: aiohttp.StreamReader, length: int) -> bytearray:
    buffer = bytearray(length)
    with memoryview(buffer) as view:
        done = 0
        while done < length:
            chunk = await content.readany()
            if not chunk or done + len(chunk) > length:
                raise LengthMismatch("the body does not match its Content-Length")
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
    return buffer


async def _grown(content: aiohttp.StreamReader, limit: int) -> bytearray:
    grown = bytearray()
    while chunk := await content.read(limit + 1 - len(grown)):
        grown += chunk
        if len(grown) > limit:
            raise OverCap(limit, None)
    return grown
