"""A hostile MCP server over streamable HTTP for the door's caps, an aiohttp app on
127.0.0.1: it answers ``initialize`` (with a session id), ``tools/list`` and the tool
``echo`` as a server should, and for the tools:

* ``flood_json``: one JSON answer of ``mib`` MiB (128 by default), streamed;
* ``flood_sse``: an event stream whose one event is an answer of ``mib`` MiB, on one line;
* ``flood_lines``: an event stream whose one event is ``mib`` MiB of short ``data:`` lines;
* ``bomb``: a JSON answer compressed with gzip, about 130 kB that inflate to ``mib`` MiB
  (sent whatever ``Accept-Encoding`` asked for).

Every answer is ``application/json`` but the event streams; a GET is 405 (no stream of its
own). Run: ``python -m tests.integration.mcp.hostile_http_server``; it prints its port on
a line once it listens."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from typing import Any

from aiohttp import web

MIB = 1024 * 1024
CHUNK = b"x" * MIB
TOOLS = ("echo", "flood_json", "flood_sse", "flood_lines", "bomb")
SESSION = "hostile-session-1"


def _json(message: dict[str, Any]) -> web.Response:
    return web.Response(
        body=json.dumps(message).encode(),
        headers={"Content-Type": "application/json", "Mcp-Session-Id": SESSION},
    )


async def _streamed(
    request: web.Request, kind: str, start: bytes, body: bytes, times: int, end: bytes
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": kind})
    await response.prepare(request)
    try:
        await response.write(start)
        for _ in range(times):
            await response.write(body)
        await response.write(end)
        await response.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        pass  # the door hung up, as it should
    return response


async def post(request: web.Request) -> web.StreamResponse:
    message = json.loads(await request.read())
    rid, method = message.get("id"), message.get("method")
    params = message.get("params") or {}
    if rid is None:
        return web.Response(status=202)
    if method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile-http", "version": "1"},
        }
        return _json({"jsonrpc": "2.0", "id": rid, "result": result})
    if method == "tools/list":
        tools = [{"name": t, "description": t, "inputSchema": {"type": "object"}} for t in TOOLS]
        return _json({"jsonrpc": "2.0", "id": rid, "result": {"tools": tools}})
    if method != "tools/call":
        return _json({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no"}})
    name = params.get("name")
    arguments = params.get("arguments") or {}
    mib = int(arguments.get("mib", 128))
    head = b'{"jsonrpc":"2.0","id":' + json.dumps(rid).encode() + b',"result":'
    text = b'{"content":[{"type":"text","text":"'
    tail = b'"}]}}'
    if name == "flood_json":
        return await _streamed(request, "application/json", head + text, CHUNK, mib, tail)
    if name == "flood_sse":
        start = b"event: message\ndata: " + head + text
        return await _streamed(request, "text/event-stream", start, CHUNK, mib, tail + b"\n\n")
    if name == "flood_lines":
        line = b"data: " + b"y" * 1017 + b"\n"  # 1 KiB a line
        lines = line * 1024
        return await _streamed(request, "text/event-stream", b"", lines, mib, b"\n")
    if name == "bomb":
        answer = head + text + b"ok" + tail
        inflated = answer[:-1] + b" " * (mib * MIB) + answer[-1:]
        return web.Response(
            body=gzip.compress(inflated, compresslevel=9),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    said = arguments.get("text", "")
    return _json(
        {"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": said}]}}
    )


async def no_stream(request: web.Request) -> web.Response:
    return web.Response(status=405)


async def ended(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def main() -> None:
    app = web.Application(client_max_size=4 * MIB)
    app.router.add_post("/mcp", post)
    app.router.add_get("/mcp", no_stream)
    app.router.add_delete("/mcp", ended)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    print(sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
