"""MCP's JSON-RPC messages as the door reads and writes them, one message a body, each read
with the MCP SDK's own types (:data:`mcp_types.jsonrpc_message_adapter`) so nothing the
SDK would refuse reaches a server.

The door's own answers (a tool not allowed, a call timed out, a server that ended) are
JSON-RPC errors made here, their words for the agent and never naming anything but the
server's and the tool's names from the config and the call."""

from __future__ import annotations

import json
from typing import Any, Final

from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    REQUEST_TIMEOUT,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

from fleet.errors import FleetwardenError

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "MAX_MESSAGE",
    "PARSE_ERROR",
    "REQUEST_TIMEOUT",
    "BadMessage",
    "JSONRPCError",
    "JSONRPCMessage",
    "JSONRPCNotification",
    "JSONRPCRequest",
    "JSONRPCResponse",
    "RequestId",
    "dump",
    "error",
    "parse",
]

MAX_MESSAGE: Final = 1024 * 1024
"""Bytes of one message either way: what an agent posts, and what a server answers that is
relayed. An answer goes into a model's context, where a megabyte is already far past what
the CLIs keep of a tool's output (Claude Code cuts at 25,000 tokens, about 100 KB). A
server's message is counted as it is read, never taken in whole first
(:mod:`fleet.mcp.upstream.capped`): a JSON body, one event of an event stream, or one line of a
stdio server's output over it is dropped where it crosses it (a stdio server is ended with
it); the agent is never sent part of one: its request is answered by an error saying so,
audited ``too_large``. An answer within it that grows past it once the credentials are
scrubbed out is answered the same way."""


class BadMessage(FleetwardenError):
    """A body that is not one JSON-RPC message of MCP: its JSON-RPC ``code``, and the
    message for the agent."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


NOTIFICATIONS: Final = "notifications/"
"""The only methods relayed without an id: MCP's notifications."""


def parse(body: bytes) -> JSONRPCMessage:
    """The one JSON-RPC message ``body`` holds; :class:`BadMessage` otherwise (a batch is
    refused: MCP dropped batches in 2025-06-18, and each message is checked alone)."""
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):
        raise BadMessage(PARSE_ERROR, "the body is not JSON") from None
    if isinstance(raw, list):
        raise BadMessage(INVALID_REQUEST, "a batch is not relayed: send one message a POST")
    if not isinstance(raw, dict):
        raise BadMessage(INVALID_REQUEST, "the body is not a JSON-RPC message (an object)")
    if "id" in raw and (isinstance(raw["id"], bool) or not isinstance(raw["id"], str | int)):
        # true, 1.0 or null would be read as no id at all: a request passed for a notification
        raise BadMessage(INVALID_REQUEST, 'an "id" is a string or an integer')
    if "method" in raw and "id" not in raw and not str(raw["method"]).startswith(NOTIFICATIONS):
        # JSON-RPC runs a method sent without an id, its answer dropped: a call in disguise
        raise BadMessage(
            INVALID_REQUEST, f"only {NOTIFICATIONS}* are sent without an id: give it an id"
        )
    try:
        return jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except ValidationError:
        raise BadMessage(
            INVALID_REQUEST,
            'not a JSON-RPC 2.0 message: a request has "jsonrpc": "2.0", an "id", a "method" '
            'and "params" an object if any',
        ) from None


def dump(message: JSONRPCMessage) -> bytes:
    """``message`` as it goes on the wire."""
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()


def error(request_id: RequestId | None, code: int, text: str, data: Any = None) -> JSONRPCError:
    """The JSON-RPC error answering ``request_id`` with ``text``."""
    return JSONRPCError(
        jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=text, data=data)
    )


def method_of(message: JSONRPCMessage) -> str | None:
    """The method a request or a notification names."""
    if isinstance(message, JSONRPCRequest | JSONRPCNotification):
        return message.method
    return None


def param(message: JSONRPCRequest | JSONRPCNotification, *path: str) -> object:
    """``message.params[path[0]][path[1]]…``, or ``None`` where any step is missing."""
    value: object = message.params
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
