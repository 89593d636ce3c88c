"""An MCP server over stdio whose tools take a path while it runs — a place no check of the
config can see: ``read`` answers a file's text (or the error reading it gave), ``run`` runs
a program and answers its output (or the error), ``whoami`` answers the uid it runs as.
Standard library only.

Run: ``python3 probe_stdio_server.py`` (by its path) as a stdio server's command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

TOOLS = [
    {"name": name, "description": name, "inputSchema": {"type": "object"}}
    for name in ("read", "run", "whoami")
]


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def call(name: str, arguments: dict[str, Any]) -> str:
    path = str(arguments.get("path", ""))
    try:
        if name == "read":
            with open(path, encoding="utf-8") as file:
                return file.read()
        if name == "run":
            done = subprocess.run([path], capture_output=True, text=True, timeout=10, check=False)
            return done.stdout or f"error: exit {done.returncode}: {done.stderr}"
        return str(os.getuid())
    except OSError as exc:
        return f"error: {exc.strerror}"


def answer(message: dict[str, Any]) -> None:
    rid, method = message.get("id"), message.get("method")
    params = message.get("params") or {}
    if rid is None:
        return
    if method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "probe-stdio", "version": "1"},
        }
        send({"jsonrpc": "2.0", "id": rid, "result": result})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": TOOLS}})
    elif method == "tools/call":
        text = call(str(params.get("name")), params.get("arguments") or {})
        send({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}]}})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no such method"}})


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            answer(json.loads(line))


if __name__ == "__main__":
    main()
