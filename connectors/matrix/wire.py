"""Calls to the homeserver through matrix-nio: error translation and bounded retries.

nio *returns* error responses (``SyncError``, ``RoomSendError`` …) instead of raising,
and raises aiohttp/asyncio exceptions for transport failures; the client is built with
``max_limit_exceeded=0, max_timeouts=0`` so that nio never retries on its own. This
module turns both into :mod:`connectors.errors` exceptions and owns the one retry
policy for writes (sends and uploads).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import nio

from connectors.errors import ConnectorAuthError, ConnectorError, RateLimited
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

TRANSIENT_EXCEPTIONS: tuple[type[Exception], ...] = (aiohttp.ClientError, TimeoutError, OSError)
"""Transport failures worth retrying: the server may be back soon."""

_AUTH_CODES = frozenset({"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"})
SEND_ATTEMPTS = 5
SEND_BUDGET_SECONDS = 60.0
UPLOAD_TIMEOUT_SECONDS = 120.0  # nio uploads have no timeout of their own
HEALTH_TIMEOUT_SECONDS = 10.0


def http_status(response: Any) -> int | None:
    """The HTTP status behind a nio response, when it came from the network."""
    status = getattr(getattr(response, "transport_response", None), "status", None)
    return status if isinstance(status, int) else None


def describe(response: Any) -> str:
    """The server's words for an error response: errcode, message, HTTP status."""
    code = getattr(response, "status_code", None)
    message = getattr(response, "message", None) or "unknown error"
    status = http_status(response)
    text = f"{code} {message}" if code else str(message)
    return f"{text} (HTTP {status})" if status is not None else text


def is_auth_failure(response: Any) -> bool:
    """The access token is not (or no longer) accepted: retrying cannot help."""
    return getattr(response, "status_code", None) in _AUTH_CODES or http_status(response) == 401


def is_transient(response: Any) -> bool:
    """A server-side failure (5xx, or no JSON error at all, e.g. from a proxy) worth retrying."""
    status = http_status(response)
    return status is None or status >= 500 or getattr(response, "status_code", None) is None


def retry_after(response: Any) -> float:
    """Seconds a rate-limited response asks us to wait (body, then header, else 1 s)."""
    millis = getattr(response, "retry_after_ms", None)
    if isinstance(millis, int | float) and millis > 0:
        return float(millis) / 1000
    headers = getattr(getattr(response, "transport_response", None), "headers", None) or {}
    try:
        seconds = float(headers.get("Retry-After", "1"))
    except ValueError:
        return 1.0
    # float() also reads "nan" and "inf"; asyncio.sleep(nan) would never return.
    return max(seconds, 0.0) if math.isfinite(seconds) else 1.0


def error_for(response: Any, what: str) -> ConnectorError:
    """The exception for an error response to ``what`` (a short description of the call)."""
    if is_auth_failure(response):
        return ConnectorAuthError(
            f"{what}: the homeserver rejected the bot's login: {describe(response)}"
        )
    if getattr(response, "status_code", None) == "M_LIMIT_EXCEEDED" or http_status(response) == 429:
        wait = retry_after(response)
        return RateLimited(f"{what}: rate limited by the homeserver ({describe(response)})", wait)
    return ConnectorError(f"{what}: {describe(response)}")


def expect(response: Any, ok: Any, what: str) -> Any:
    """``response`` if it is an ``ok`` response, else raise the matching ConnectorError."""
    if isinstance(response, ok):
        return response
    raise error_for(response, what)


async def call(request: Awaitable[Any], ok: Any, what: str) -> Any:
    """Await one nio request; transport failures become ConnectorError too."""
    try:
        response = await request
    except TRANSIENT_EXCEPTIONS as exc:
        raise ConnectorError(f"{what}: cannot reach the homeserver: {exc!r}") from exc
    return expect(response, ok, what)


async def with_retries(
    request: Callable[[], Awaitable[Any]], ok: Any, what: str, clock: Clock
) -> Any:
    """Run ``request`` until it succeeds: at most 5 tries within 60 s.

    Retried: rate limits (after the wait the server asks for), 5xx and transport
    failures (after 1, 2, 4 … s). The request must be idempotent — sends reuse
    their transaction id. Other errors are raised at once.
    """
    deadline = clock.monotonic() + SEND_BUDGET_SECONDS
    for attempt in range(SEND_ATTEMPTS):
        try:
            response = await request()
        except TRANSIENT_EXCEPTIONS as exc:
            error: ConnectorError = ConnectorError(f"{what}: cannot reach the homeserver: {exc!r}")
            wait = float(2**attempt)
        else:
            if isinstance(response, ok):
                return response
            error = error_for(response, what)
            if isinstance(error, RateLimited):
                wait = error.retry_after
            elif isinstance(error, ConnectorAuthError) or not is_transient(response):
                raise error
            else:
                wait = float(2**attempt)
        if attempt == SEND_ATTEMPTS - 1 or clock.monotonic() + wait > deadline:
            raise error
        log.warning("%s failed (%s); retrying in %.1f s", what, error, wait)
        await asyncio.sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def send_event(
    client: nio.AsyncClient, room: str, content: Any, tx_id: str, clock: Clock
) -> str:
    """Post one ``m.room.message``; its ``tx_id`` makes retries safe. Returns the event id."""
    response = await with_retries(
        lambda: client.room_send(room, "m.room.message", content, tx_id=tx_id),
        nio.RoomSendResponse,
        f"send to {room}",
        clock,
    )
    return str(response.event_id)


async def upload_png(
    client: nio.AsyncClient, name: str, data: bytes, clock: Clock, *, encrypt: bool = False
) -> tuple[str, dict[str, Any] | None]:
    """Upload a PNG to the media repository: its ``mxc://`` URI, and with ``encrypt`` (for an
    encrypted room) the key, IV and hashes a reader needs to decrypt it."""
    return await upload(client, name, data, "image/png", clock, encrypt=encrypt)


async def upload(
    client: nio.AsyncClient,
    name: str,
    data: bytes,
    content_type: str,
    clock: Clock,
    *,
    encrypt: bool = False,
) -> tuple[str, dict[str, Any] | None]:
    """Upload ``data`` to the media repository as ``content_type``: its ``mxc://`` URI, and
    with ``encrypt`` (for an encrypted room) the key, IV and hashes a reader needs to decrypt
    it; the server then only ever holds ciphertext, typed ``application/octet-stream``."""
    keys: dict[str, Any] | None = None

    async def once() -> Any:
        nonlocal keys
        async with asyncio.timeout(UPLOAD_TIMEOUT_SECONDS):
            response, keys = await client.upload(
                lambda _got_429, _got_timeouts: data,
                content_type="application/octet-stream" if encrypt else content_type,
                filename=name,
                filesize=len(data),  # AES-CTR: the ciphertext is as long; Synapse needs it
                encrypt=encrypt,
            )
        return response

    response = await with_retries(once, nio.UploadResponse, f"upload {name}", clock)
    return str(response.content_uri), keys if encrypt else None


async def versions(client: nio.AsyncClient) -> str | None:
    """GET ``/_matrix/client/versions`` through nio's session: None if fine, else the problem.

    Hand-written: nio has no call for this endpoint; ``AsyncClient.send`` is its raw
    request on the same aiohttp session (no retries, no response parsing).
    """
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            response = await client.send(
                "GET", "/_matrix/client/versions", timeout=HEALTH_TIMEOUT_SECONDS
            )
            status = response.status
            response.release()
    except TRANSIENT_EXCEPTIONS as exc:
        return f"cannot reach {client.homeserver}: {exc!r}"
    return None if status == 200 else f"{client.homeserver} answered HTTP {status} for /versions"


async def raw_answer(
    client: nio.AsyncClient, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """One authenticated JSON request on nio's session: its HTTP status and JSON body (None
    when it has none), whatever the status. Raises ConnectorError when unreachable."""
    headers = {"Authorization": f"Bearer {client.access_token}"}
    data = None if body is None else json.dumps(body)
    if data is not None:
        headers["Content-Type"] = "application/json"
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS * 3):
            response = await client.send(
                method, path, data, headers, timeout=HEALTH_TIMEOUT_SECONDS * 3
            )
            status = response.status
            try:
                parsed: Any = await response.json(content_type=None)
            except ValueError:
                parsed = None
            response.release()
    except TRANSIENT_EXCEPTIONS as exc:
        what = f"{method} {path.split('?', 1)[0]}"
        raise ConnectorError(f"{what}: cannot reach the homeserver: {exc!r}") from exc
    return status, parsed


async def raw_json(
    client: nio.AsyncClient, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """One authenticated JSON request on nio's session, for endpoints nio has no call for.

    Raises ConnectorAuthError when the token is rejected, ConnectorError otherwise.
    """
    what = f"{method} {path.split('?', 1)[0]}"
    status, parsed = await raw_answer(client, method, path, body)
    if status == 401:
        raise ConnectorAuthError(f"{what}: the homeserver rejected the bot's login (HTTP 401)")
    if not isinstance(parsed, dict | list):
        raise ConnectorError(f"{what}: HTTP {status} without a JSON body")
    if status >= 400 and isinstance(parsed, dict):
        code, message = parsed.get("errcode", "?"), parsed.get("error", "")
        raise ConnectorError(f"{what}: {code} {message} (HTTP {status})")
    if status >= 400:
        raise ConnectorError(f"{what}: HTTP {status}")
    return parsed
