"""A small MCP server on 127.0.0.1 that records what MCP clients send it.

It speaks streamable HTTP at ``/mcp`` as the specification allows a server to: each
JSON-RPC request is answered with one ``application/json`` body, a notification with 202,
the ``GET`` of a server-sent stream with 405 (the server sends nothing unasked), and the
session's ``DELETE`` with 200. It serves one tool, ``echo``, answering ``echo: <text>``.
Every HTTP request is kept in ``requests`` (its method, path, headers and the JSON-RPC
methods of its body) and every call in ``calls``, so a test proves what a real agent CLI
sent: which headers (the ``Authorization`` it holds), which methods, which arguments.
Any other path is 404, as the OAuth discovery a client tries after a 401 finds nothing.
``token`` set, a request without ``Authorization: Bearer <token>`` is answered 401.
``stall`` holds each ``initialize`` that many seconds before answering it (``math.inf``:
until the server stops), to show what a client does with a server slow to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy

from tests.fakes.loopback import LoopbackServer

PATH = "/mcp"
PROTOCOL = "2025-06-18"
ECHO = {
    "name": "echo",
    "description": "Echo the text back.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}
_INVALID = -32600
_NOT_FOUND = -32601
_BAD_PARAMS = -32602
_UNKNOWN_SESSION = -32001


@dataclass(frozen=True)
class Recorded:
    """One HTTP request: ``methods`` are the JSON-RPC methods its body held."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    methods: tuple[str, ...]


@dataclass(frozen=True)
class Call:
    """One ``tools/call``, with the headers that came with it."""

    tool: str
    arguments: Mapping[str, Any]
    meta: Mapping[str, Any]
    headers: CIMultiDictProxy[str]


class McpRecorder(LoopbackServer):
    """The server; ``url`` is its endpoint, ``http://127.0.0.1:PORT/mcp``."""

    def __init__(
        self, name: str = "recorder", token: str | None = None, stall: float = 0.0
    ) -> None:
        super().__init__()
        self.name = name
        self.token = token
        self.stall = stall
        self._stopping = asyncio.Event()
        self.requests: list[Recorded] = []
        self.calls: list[Call] = []
        self.sessions: set[str] = set()

    @property
    def _bearer(self) -> str:
        return f"Bearer {self.token}"

    @property
    def url(self) -> str:
        return self.base_url + PATH

    def methods(self) -> list[str]:
        """Every JSON-RPC method received, in order."""
        return [m for r in self.requests for m in r.methods]

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def before_stop(self) -> None:
        self._stopping.set()  # a stalled initialize gives up, and its connection closes

    async def _stalled(self) -> None:
        """Wait ``stall`` seconds, or until the server stops."""
        timeout = None if math.isinf(self.stall) else self.stall
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = _parse(raw)
        items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
        methods = tuple(str(i["method"]) for i in items if isinstance(i, dict) and "method" in i)
        self.requests.append(Recorded(request.method, request.path, request.headers, methods))
        if request.path != PATH:
            return web.Response(status=404)
        if self.token is not None and request.headers.get("Authorization") != self._bearer:
            return web.json_response(
                {"error": "invalid_token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if request.method == "GET":
            return web.Response(status=405, headers={"Allow": "POST, DELETE"})
        if request.method == "DELETE":
            self.sessions.discard(request.headers.get("Mcp-Session-Id", ""))
            return web.Response(status=200)
        if request.method != "POST" or not isinstance(body, dict):
            error = _error(None, _INVALID, "one JSON-RPC message per POST")
            return web.json_response(error, status=400)
        if body.get("method") == "initialize" and self.stall:
            await self._stalled()
            if self._stopping.is_set():
                return web.Response(status=503)
        return self._answer(request, body)

    def _answer(self, request: web.Request, message: dict[str, Any]) -> web.Response:
        ident, method = message.get("id"), message.get("method")
        if ident is None:  # a notification, or a client's response: nothing to answer
            return web.Response(status=202)
        if method == "initialize":
            session = secrets.token_hex(8)
            self.sessions.add(session)
            version = (message.get("params") or {}).get("protocolVersion") or PROTOCOL
            result = {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": self.name, "version": "1"},
            }
            return web.json_response(_result(ident, result), headers={"Mcp-Session-Id": session})
        if request.headers.get("Mcp-Session-Id") not in self.sessions:
            return web.json_response(_error(ident, _UNKNOWN_SESSION, "no such session"), status=404)
        if method == "tools/list":
            return web.json_response(_result(ident, {"tools": [ECHO]}))
        if method == "tools/call":
            return web.json_response(self._call(ident, message.get("params") or {}, request))
        if method == "ping":
            return web.json_response(_result(ident, {}))
        return web.json_response(_error(ident, _NOT_FOUND, f"method not found: {method}"))

    def _call(self, ident: object, params: Mapping[str, Any], request: web.Request) -> Any:
        tool, arguments = params.get("name"), params.get("arguments") or {}
        if tool != ECHO["name"] or not isinstance(arguments.get("text"), str):
            return _error(ident, _BAD_PARAMS, f"no such tool or bad arguments: {tool}")
        meta = params.get("_meta") or {}
        self.calls.append(Call(tool, dict(arguments), dict(meta), request.headers))
        text = f"echo: {arguments['text']}"
        return _result(ident, {"content": [{"type": "text", "text": text}], "isError": False})


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _result(ident: object, result: Mapping[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "result": dict(result)}


def _error(ident: object, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}
