"""The credential in every form through the real ``fleetwarden run``: a ``command`` agent
granted the hostile server of :mod:`tests.integration.mcp.forms_mcp_server` calls it with
its run's token, once per form and place; what it gets back, the ledger's ``mcp_calls``
rows and the console's thread lines hold the label, and nothing that reads back as the
credential."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.console_bot import wait_until
from tests.integration.forge_rig import ledger_rows
from tests.integration.mcp.app_rig import CONSOLE_HEAD, TRACKER, agent_log, held_env, running_app
from tests.integration.mcp.forms_mcp_server import FORMS
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV
from tests.integration.mcp.test_mcp_door_forms import LABEL, Start, clean, forms_mcp

pytestmark = pytest.mark.integration

__all__ = ["forms_mcp"]  # the fixture, shared with the door's own test

TOKEN_LINE = re.compile(r"^TOKEN=(\S+)$", re.MULTILINE)
WAITER = 'echo "TOKEN=$FLEETWARDEN_HEARTBEAT_TOKEN"; while [ ! -e leave ]; do sleep 0.05; done'
CONFIG = (
    CONSOLE_HEAD
    + TRACKER
    + """\
agents:
  - name: coder
    runtime: command
    argv: [sh, -c, '{waiter}']
    workdir: ./work
    mcp: [tracker]
    allow: [mcp__tracker__leak]
"""
)
PLACES = ("error", "result", "error_data", "meta")
"""The places a plain JSON answer carries (notifications come on the listening stream). An
error first: the console shows the first calls of a burst and counts the rest, so an error's
line is always among those shown."""


def post(url: str, headers: dict[str, str], message: dict[str, object]) -> tuple[int, str]:
    """One JSON-RPC message posted as a script would: its status and body; the session's
    id kept in ``headers``."""
    request = urllib.request.Request(url, json.dumps(message).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            if "Mcp-Session-Id" in answer.headers:
                headers["Mcp-Session-Id"] = answer.headers["Mcp-Session-Id"]
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_every_form_reaches_the_agent_the_ledger_and_the_thread_as_a_label(
    tmp_path: Path, forms_mcp: Start
) -> None:
    """Each form in a result, an error's message and data and a result's ``_meta``: the
    agent's answers, every ``mcp_calls`` row (arguments, result, why) and the console's
    output hold no form of the credential, and the label where one was."""
    (tmp_path / "work").mkdir()
    config = tmp_path / "fleetwarden.yaml"
    url = forms_mcp()
    config.write_text(CONFIG.format(url=url, credential_env=CREDENTIAL_ENV, waiter=WAITER))
    with running_app(
        tmp_path,
        config,
        held_env(),
        leftovers=lambda cwd, cmdline: cwd.startswith(str(tmp_path)) and b"sleep" in cmdline,
    ) as bot:
        bot.command("spawn coder", r"Agent coder started", timeout=120)
        assert wait_until(lambda: TOKEN_LINE.search(agent_log(tmp_path, "coder")), 60)
        found = TOKEN_LINE.search(agent_log(tmp_path, "coder"))
        assert found is not None
        port = json.loads((tmp_path / "state" / "heartbeat.json").read_text())["port"]
        door = f"http://127.0.0.1:{port}/mcp/coder/tracker"
        headers = {
            "Authorization": f"Bearer {found.group(1)}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        info = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "s", "version": "1"},
        }
        start = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": info}
        said = [post(door, headers, start)[1]]
        post(door, headers, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        for n, (place, form) in enumerate((p, f) for p in PLACES for f in FORMS):
            params = {"name": "leak", "arguments": {"place": place, "form": form}}
            call = {"jsonrpc": "2.0", "id": n + 1, "method": "tools/call", "params": params}
            status, body = post(door, headers, call)
            assert status == 200, body
            said.append(body)

        def rows() -> list[tuple[object, ...]]:
            return ledger_rows(tmp_path, "SELECT arguments, result, why FROM mcp_calls")

        calls = len(PLACES) * len(FORMS)
        assert wait_until(lambda: len(rows()) == calls, 30), rows()
        bot.expect(r"🔌 MCP tracker · “leak” → error", timeout=20)
        (tmp_path / "work" / "leave").write_text("")
        assert bot.close() == 0, bot.stderr[-3000:]
        console = bot.stdout + bot.stderr
    for body in said:
        assert clean(body), body
    assert sum(LABEL in body for body in said) == calls + 1  # each call, and instructions
    for row in rows():
        for text in row:
            assert isinstance(text, str) and clean(text), row
    assert any(LABEL in str(row[2]) for row in rows())  # an error's words, as the agent got
    assert clean(console) and CREDENTIAL not in console
