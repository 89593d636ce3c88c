"""A hostile MCP server over stdio for the door's caps: it answers ``initialize``,
``tools/list`` and the tool ``echo`` as a server should, and for the tool ``flood`` writes one
line that never ends: the start of its answer (``{"jsonrpc": "2.0", "id": N, "result": …``)
then ``mib`` MiB of text (128 by default) with no newline, then nothing more. ``flood_tail``
does the same with the id where the TypeScript SDK puts it, last, so the line's start names
no request. Nothing is written after a flood.

Run: ``python hostile_stdio_server.py`` (by its path) as a stdio server's command."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

CHUNK = b"x" * (1024 * 1024)
TOOLS = [
    {"name": name, "description": name, "inputSchema": {"type": "object"}}
    for name in ("echo", "flood", "flood_tail")
]
out = sys.stdout.buffer
lock = threading.Lock()


def send(message: dict[str, Any]) -> None:
    with lock:
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()


def flood(start: bytes, mib: int) -> None:
    """One line that never ends: ``start`` then ``mib`` MiB, no newline, held by the lock
    (nothing else is written after it) until the process ends."""
    lock.acquire()
    out.write(start)
    for _ in range(mib):
        out.write(CHUNK)
        out.flush()


def answer(message: dict[str, Any]) -> None:
    rid, method = message.get("id"), message.get("method")
    params = message.get("params") or {}
    if rid is None:
        return
    if method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile-stdio", "version": "1"},
        }
        send({"jsonrpc": "2.0", "id": rid, "result": result})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": TOOLS}})
    elif method == "tools/call":
        name = params.get("name")
        mib = int((params.get("arguments") or {}).get("mib", 128))
        text = b'{"content":[{"type":"text","text":"'
        if name == "flood":
            head = b'{"jsonrpc":"2.0","id":' + json.dumps(rid).encode() + b',"result":'
            threading.Thread(target=flood, args=(head + text, mib), daemon=True).start()
        elif name == "flood_tail":
            threading.Thread(target=flood, args=(b'{"result":' + text, mib), daemon=True).start()
        else:
            said = (params.get("arguments") or {}).get("text", "")
            result = {"content": [{"type": "text", "text": said}]}
            send({"jsonrpc": "2.0", "id": rid, "result": result})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no such method"}})


def main() -> None:
    for line in sys.stdin.buffer:
        if line.strip():
            answer(json.loads(line))


if __name__ == "__main__":
    main()
