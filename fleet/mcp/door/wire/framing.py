"""MCP's streamable HTTP transport as the door frames it on aiohttp: the agent's token, whether
it takes an event stream or JSON (its ``Accept``), whether it hung up, and the answers — one
JSON body, a JSON-RPC error with its HTTP status, or an event stream of messages."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Final

from aiohttp import web

from fleet.connections.token import TOKEN_HEADER
from fleet.mcp.door.wire.accept import takes
from fleet.mcp.wire import INVALID_REQUEST, RequestId, dump, error

log = logging.getLogger(__name__)

JSON: Final = "application/json"


def token_of(request: web.Request) -> str | None:
    """The agent's token: ``X-Fleetwarden-Token``, else a bearer ``Authorization``."""
    given = request.headers.get(TOKEN_HEADER)
    if given is not None:
        return given
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def gone(request: web.Request) -> bool:
    """Whether the agent that posted ``request`` has hung up. aiohttp (3.14, the app's
    runner without ``handler_cancellation``) neither cancels the handler when its client
    closes the connection nor has a hook for it: the protocol's ``connection_lost`` drops the
    transport, so a transport gone or closing is the sign."""
    transport = request.transport
    return transport is None or transport.is_closing()


def streams(request: web.Request) -> bool:
    """Whether the agent takes an event stream: its ``Accept`` names it, weight over 0."""
    return takes(_accept(request), "text/event-stream", wildcards=False)


def takes_json(request: web.Request) -> bool:
    """Whether the agent takes a JSON answer too (MCP's clients say both in ``Accept``):
    ``application/json``, ``application/*`` or ``*/*`` of its ``Accept``, weight over 0."""
    return takes(_accept(request), JSON)


def _accept(request: web.Request) -> str:
    return ",".join(request.headers.getall("Accept", ()))


def json_answer(body: bytes, headers: Mapping[str, str] | None = None) -> web.Response:
    """``body`` (one JSON-RPC message) as the answer."""
    return web.Response(body=body, content_type=JSON, headers=headers)


def refused(
    request_id: RequestId | None, why: str, status: int, code: int = INVALID_REQUEST
) -> web.Response:
    """The JSON-RPC error answering ``request_id`` with ``why``, with HTTP ``status``."""
    return web.Response(body=dump(error(request_id, code, why)), status=status, content_type=JSON)


async def event_stream(
    request: web.Request, messages: AsyncGenerator[bytes, None]
) -> web.StreamResponse:
    """Send ``messages`` as an event stream, each one event, until they end or the agent
    goes."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    try:
        await response.prepare(request)
        async for message in messages:
            await response.write(b"event: message\ndata: " + message + b"\n\n")
        await response.write_eof()
    except ConnectionError:
        log.info("MCP door: an agent closed its stream")
    finally:
        await messages.aclose()
    return response
