"""What the MCP tests that drive the real ``fleetwarden run`` share: the config's head, the
environment holding the server's credential, the app run on a config (everything it left
running killed at the end), an agent's output, the ledger's ``mcp_calls``, ``/metrics``,
and the agent's side of a script that speaks to the door from the ``mcp.json`` its launch
wrote."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from tests.integration.console_bot import ConsoleBot, clean_env, processes_where, under
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV

CONSOLE_HEAD = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
"""
"""A config's head (a template: ``{{}}`` is ``{}`` once formatted): the console alone, its
state in ``./state``, agents stopped after a second's grace."""

TRACKER = """\
mcp:
  tracker:
    url: {url}
    headers_env: {{Authorization: {credential_env}}}
"""
"""A config's ``mcp:`` with the test server ``{url}`` as ``tracker``, its ``Authorization``
held in ``{credential_env}``; the server's other keys may follow."""


def held_env(**extra: str) -> dict[str, str]:
    """The app's environment: the server's credential in :data:`CREDENTIAL_ENV`, and
    ``extra``."""
    return clean_env(**{CREDENTIAL_ENV: f"Bearer {CREDENTIAL}"}, **extra)


@contextlib.contextmanager
def running_app(
    root: Path,
    config: Path,
    env: Mapping[str, str],
    *,
    leave: Path | None = None,
    leftovers: Callable[[str, bytes], bool] = lambda cwd, cmdline: False,
) -> Iterator[ConsoleBot]:
    """The real ``fleetwarden run`` on ``config`` in ``root``; when the block ends, the
    file ``leave`` (which the test's agents wait for) made, the app killed if it still
    runs, and every process of ``root``'s (:func:`~tests.integration.console_bot.under`)
    that ``leftovers(cwd, cmdline)`` names killed: never another test's."""
    bot = ConsoleBot(root, "--config", str(config), env=dict(env))
    try:
        yield bot
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        if leave is not None:
            with contextlib.suppress(OSError):
                leave.write_text("")
        for pid in processes_where(
            lambda cwd, cmdline: under(root, cwd, cmdline) and leftovers(cwd, cmdline)
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def agent_log(root: Path, agent: str) -> str:
    """What ``agent`` has written to its output so far ("" before it has any)."""
    path = root / "state" / "agents" / agent / "output.log"
    return path.read_text(errors="replace") if path.exists() else ""


def mcp_calls(root: Path, columns: str) -> list[tuple[object, ...]]:
    """``columns`` of the ledger's ``mcp_calls`` in ``root/state``, oldest first, read-only
    ([] while the ledger is not made yet)."""
    path = root / "state" / "ledger.db"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return list(db.execute(f"SELECT {columns} FROM mcp_calls ORDER BY id"))
    except sqlite3.OperationalError:  # the ledger not made yet
        return []
    finally:
        db.close()


def scrape(dashboard: int, token: str) -> str:
    """The dashboard's ``/metrics``, read with the metrics token."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{dashboard}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(answer.read().decode())


def door_client(server: str, timeout: int) -> str:
    """The start of an agent's script: the door's URL and headers for ``server`` read from
    ``$HOME/.fleetwarden/mcp.json``, ``post(message)`` (the answer's bytes; the session's id
    kept; no proxy; ``timeout`` seconds), and the session initialized."""
    return f"""
import json, os, sys, urllib.request
config = json.load(open(os.path.join(os.environ["HOME"], ".fleetwarden", "mcp.json")))
server = config["mcpServers"]["{server}"]
door = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
headers = {{**server["headers"], "Content-Type": "application/json", "Accept": "application/json"}}
def post(message):
    request = urllib.request.Request(server["url"], json.dumps(message).encode(), headers)
    with door.open(request, timeout={timeout}) as answer:
        if "Mcp-Session-Id" in answer.headers:
            headers["Mcp-Session-Id"] = answer.headers["Mcp-Session-Id"]
        return answer.read()
client = {{"name": "script", "version": "1"}}
info = {{"protocolVersion": "2025-06-18", "capabilities": {{}}, "clientInfo": client}}
post({{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": info}})
post({{"jsonrpc": "2.0", "method": "notifications/initialized"}})
"""
