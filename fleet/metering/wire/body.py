"""An agent's request body as the proxy takes it: read within a deadline and a size cap,
decoded when the agent compressed it, and parsed only as far as metering needs.

* **Size.** A body over :data:`MAX_REQUEST` bytes — as sent or once decoded — is refused
  with 413, before it is read when it says its length. Claude Code's requests are ~100 KB
  to a few MB; image-heavy ones more.
* **Time.** The whole body must arrive within the deadline the caller gives: a client
  that trickles it holds no connection forever (408).
* **Memory.** A body with a ``Content-Length`` is read into one buffer of that size, with
  no copy; a body the proxy rewrites is serialised once, compactly, keeping non-ASCII text
  as UTF-8 rather than six-byte escapes.
* **Encodings.** ``gzip`` and ``deflate`` bodies are decoded (at most :data:`MAX_REQUEST`
  bytes of output, so a decompression bomb stops early) and go upstream as identity with
  no ``Content-Encoding``: the model rewrite and the usage request apply to them as to any
  other. Any other encoding is refused with 415 naming it.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Final

import aiohttp
from aiohttp import web

from fleet.accounts.providers import ProviderApi
from fleet.capped_body import LengthMismatch, OverCap, read_capped
from fleet.hostile_json import JsonRefused, read_object
from fleet.metering.wire.endpoints import shown
from fleet.metering.wire.shapes import error_response

MAX_REQUEST: Final = 32 * 1024 * 1024  # bytes, as sent and once decoded
_ZLIB_WBITS: Final = {"gzip": 31, "x-gzip": 31, "deflate": zlib.MAX_WBITS}
_SAID: Final = frozenset({"duplicate", "number", "encoding"})  # what json_object says


class BodyRefused(Exception):
    """The body cannot be taken: ``status`` and a message for the agent."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(
    request: web.Request, *, within: float, limit: int = MAX_REQUEST
) -> bytes | bytearray:
    """The request's body, decoded, read within ``within`` seconds; raises
    :class:`BodyRefused`."""
    try:
        raw = await read_capped(request, limit, within=within, exact=True)
    except OverCap:
        raise BodyRefused(413, _too_large(limit)) from None
    except LengthMismatch:
        raise BodyRefused(400, "the request body does not match its Content-Length") from None
    except TimeoutError:
        raise BodyRefused(408, f"the request body did not arrive within {within:g} s") from None
    except (aiohttp.ClientPayloadError, ConnectionError) as exc:
        raise BodyRefused(400, f"the request body was cut ({type(exc).__name__})") from None
    return decode(raw, request.headers.get("Content-Encoding", ""), limit)


async def take_body(
    request: web.Request, api: ProviderApi, *, within: float
) -> bytes | bytearray | web.Response:
    """The request's body as :func:`read_body` reads it, or the answer to give the agent
    (in ``api``'s error shape) when it cannot be taken."""
    try:
        return await read_body(request, within=within)
    except BodyRefused as exc:
        return error_response(api, exc.status, f"Fleetwarden: {exc}")


def decode(body: bytes | bytearray, encoding: str, limit: int = MAX_REQUEST) -> bytes | bytearray:
    """``body`` with its content codings (``Content-Encoding``, applied in order) undone;
    raises :class:`BodyRefused` for an encoding the proxy cannot read, a body that does not
    decode, or one that decodes to more than ``limit`` bytes."""
    codings = [part.strip().lower() for part in encoding.split(",") if part.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        wbits = _ZLIB_WBITS.get(coding)
        if wbits is None:
            raise BodyRefused(
                415,
                f"the request body is {coding[:40]!r}-encoded, which the proxy cannot read; "
                "send it uncompressed, gzip or deflate",
            )
        body = _inflate(body, wbits, coding, limit)
    return body


def _inflate(data: bytes | bytearray, wbits: int, coding: str, limit: int) -> bytearray:
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    try:
        pending: bytes | bytearray = data
        while pending and not inflater.eof:
            out += inflater.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise BodyRefused(413, _too_large(limit) + " once decoded")
            pending = inflater.unconsumed_tail
        out += inflater.flush()
    except zlib.error:
        raise BodyRefused(400, f"the request body is not valid {coding}") from None
    if not inflater.eof or inflater.unused_data or len(out) > limit:
        raise BodyRefused(400, f"the request body is not one complete {coding} stream")
    return out


def json_object(
    body: bytes | bytearray, *, say_why: bool = False, limit: int | None = None
) -> dict[str, Any] | None:
    """``body`` as a JSON object, or ``None`` if it is not one, or the hostile-JSON reader
    refuses it (:mod:`fleet.hostile_json`: nested too deep, over ``limit`` bytes, …).

    With ``say_why``, a body refused for what no JSON writer sends raises
    :class:`BodyRefused` (400) saying what: an object anywhere in it with a key twice (named:
    Python keeps the last of them, a provider may read the first, and the proxy must meter
    the request the provider serves — its ``model``, ``max_tokens``, ``stream``,
    ``stream_options``), ``NaN`` or an infinite number, text that is not UTF-8."""
    try:
        return read_object(body, what="the request body", limit=limit)
    except JsonRefused as exc:
        if not say_why or exc.kind not in _SAID:
            return None
        if exc.key is not None:
            key = shown(exc.key[:64])
            raise BodyRefused(
                400, f"the request body has the key {key!r} twice; send each key once"
            ) from None
        raise BodyRefused(400, f"{exc}") from None


def encode_json(payload: dict[str, Any]) -> bytes:
    """``payload`` serialised for upstream: compact, and non-ASCII as UTF-8 (escaped only
    when it holds a lone surrogate, which UTF-8 cannot carry)."""
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(payload, separators=(",", ":")).encode()


def asks_usage(payload: dict[str, Any]) -> bool:
    """Whether a Chat Completions request asked for its stream's usage chunk."""
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _too_large(limit: int) -> str:
    return f"the request body is over {limit // (1024 * 1024)} MiB"
