"""What the forge tests that drive the real ``fleetwarden run`` share: posting a delivery
to its webhook endpoint, waiting for it to listen, the fake provider's turns that make
Claude Code write a file or run a command, and reading its ledger read-only."""

from __future__ import annotations

import http.client
import socket
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.fakes.provider import ToolCall, Turn


def post(port: int, forge: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
    """Post a delivery to ``/webhooks/<forge>`` on the bot's port; the status and text."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", f"/webhooks/{forge}", body=body, headers=dict(headers))
        answer = conn.getresponse()
        return answer.status, answer.read().decode(errors="replace")
    finally:
        conn.close()


def listening(port: int) -> bool:
    """Whether something takes connections on ``port`` of 127.0.0.1 now."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def bash(command: str) -> Turn:
    """A turn in which Claude Code runs ``command`` with its Bash tool."""
    return Turn(text="", tool=ToolCall("Bash", {"command": command, "description": "run it"}))


def write(path: Path, content: str) -> Turn:
    """A turn in which Claude Code writes ``content`` to ``path``."""
    return Turn(text="", tool=ToolCall("Write", {"file_path": str(path), "content": content}))


def ledger_rows(tmp_path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` over the bot's ledger (``tmp_path/state``), opened read-only."""
    path = tmp_path / "state" / "ledger.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()
