"""The MCP door in the real ``fleetwarden run``: a config with an ``mcp:`` server (the SDK's
server on loopback, which requires a token only Fleetwarden holds, priced per call) and a
``command`` agent granted it. With its run's token the agent's side posts plain JSON-RPC
(initialize, then ``tools/call``) to ``/mcp/<agent>/<server>`` on the heartbeat endpoint;
the server sees the held credential, and the call is then in the ledger (with its run and
its price, billed as ``usage``), in the agent's thread, in ``runs NAME`` and in
``/metrics``. A ``roster reload`` that takes the grant away refuses the next session."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.console_bot import wait_until
from tests.integration.forge_rig import ledger_rows
from tests.integration.mcp.app_rig import (
    CONSOLE_HEAD,
    TRACKER,
    agent_log,
    held_env,
    running_app,
    scrape,
)
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV, HttpMcp
from tests.postgres_server import free_port

pytestmark = pytest.mark.integration

METRICS_TOKEN = "metrics-token-for-the-mcp-test-0123456789"
TOKEN_LINE = re.compile(r"^TOKEN=(\S+)$", re.MULTILINE)
# Prints its run's token, then waits until the file ``leave`` is in its workdir.
WAITER = 'echo "TOKEN=$FLEETWARDEN_HEARTBEAT_TOKEN"; while [ ! -e leave ]; do sleep 0.05; done'
CONFIG = (
    CONSOLE_HEAD
    + """\
dashboard:
  listen: 127.0.0.1:{dashboard}
  metrics_token_env: FW_TEST_METRICS_TOKEN
"""
    + TRACKER
    + """\
    price_per_call: 0.05
agents:
  - name: coder
    runtime: command
    argv: [sh, -c, '{waiter}']
    workdir: ./work
    {grant}
"""
)


def _config(path: Path, url: str, dashboard: int, *, granted: bool, allowed: bool = True) -> None:
    grant = "mcp: [tracker]" + ("\n    allow: [mcp__tracker__echo]" if allowed else "")
    path.write_text(
        CONFIG.format(
            dashboard=dashboard,
            url=url,
            credential_env=CREDENTIAL_ENV,
            waiter=WAITER,
            grant=grant if granted else "",
        )
    )


def _log(root: Path) -> str:
    return agent_log(root, "coder")


def _post(url: str, token: str, message: dict[str, object], session: str | None = None):  # type: ignore[no-untyped-def]
    """One JSON-RPC message posted as a script would: (status, headers, body)."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    if session is not None:
        headers["Mcp-Session-Id"] = session
    request = urllib.request.Request(
        url, data=json.dumps(message).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def _initialize(url: str, token: str) -> str:
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "script", "version": "1"},
    }
    status, headers, body = _post(
        url, token, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    )
    assert status == 200, body
    session = headers["Mcp-Session-Id"]
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert _post(url, token, done, session)[0] == 202
    return session


def sleeping_in(root: Path) -> Callable[[str, bytes], bool]:
    """The agent's shell and its ``sleep``, left running in ``root`` if a test failed."""
    return lambda cwd, cmdline: cwd.startswith(str(root)) and b"sleep" in cmdline


def _door_of_coder(root: Path) -> tuple[str, str]:
    """The door's URL for coder's tracker, and the run's token coder printed."""
    assert wait_until(lambda: TOKEN_LINE.search(_log(root)) is not None, 60), _log(root)
    found = TOKEN_LINE.search(_log(root))
    assert found is not None
    port = json.loads((root / "state" / "heartbeat.json").read_text())["port"]
    return f"http://127.0.0.1:{port}/mcp/coder/tracker", found.group(1)


def test_a_tool_call_through_the_apps_door_is_in_the_ledger_runs_thread_and_metrics(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """An agent's plain-HTTP tools/call with its run token reaches the server with the held
    credential; the call is in mcp_calls with its run and price, billed as a usage row of
    provider mcp (which ``usage`` sums), told in the thread, listed by ``runs coder`` and
    counted in /metrics; a
    reload that takes the grant away refuses a new session."""
    (tmp_path / "work").mkdir()
    dashboard = free_port()
    config = tmp_path / "fleetwarden.yaml"
    _config(config, http_mcp.url, dashboard, granted=True)
    env = held_env(FW_TEST_METRICS_TOKEN=METRICS_TOKEN)
    with running_app(tmp_path, config, env, leftovers=sleeping_in(tmp_path)) as bot:
        bot.command("spawn coder", r"Agent coder started", timeout=120)
        url, token = _door_of_coder(tmp_path)

        session = _initialize(url, token)
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "hello door"}},
        }
        status, _, body = _post(url, token, call, session)
        assert status == 200, body
        assert json.loads(body)["result"]["content"][0]["text"] == "hello door"
        assert f"Bearer {CREDENTIAL}" in http_mcp.authorizations()
        assert token not in "".join(http_mcp.authorizations())

        # The ledger: the call with its run and price, and the price as a usage row.
        def kept() -> list[tuple[object, ...]]:
            return ledger_rows(
                tmp_path,
                "SELECT agent, server, method, name, outcome, run_id, cost_usd FROM mcp_calls",
            )

        assert wait_until(lambda: len(kept()) == 1, 20), kept()
        [(agent, server, method, name, outcome, run_id, cost)] = kept()
        assert (agent, server, method, name, outcome, cost) == (
            "coder", "tracker", "tools/call", "echo", "ok", 0.05
        )  # fmt: skip
        runs = ledger_rows(
            tmp_path, "SELECT id FROM runs WHERE agent = 'coder' AND ended_at IS NULL"
        )
        assert [(run_id,)] == runs

        def usage() -> list[tuple[object, ...]]:
            columns = "provider, served_model, cost_usd, priced"
            return ledger_rows(tmp_path, f"SELECT {columns} FROM usage")

        assert wait_until(lambda: ("mcp", "mcp:tracker", 0.05, 1) in usage(), 20), usage()

        # The thread (the console's home room: it has no threads), and `runs coder`.
        bot.expect(r"🔌 MCP tracker · “echo” → ok in [\d.]+s .*\$0\.05", timeout=20)
        bot.command("runs coder", r"The last 1 MCP call, newest first:")
        bot.expect(rf"run #{run_id}: 🔌 MCP tracker · “echo” → ok")

        # Its price is spend like a model request's: `usage` sums it under mcp:tracker.
        bot.command("usage coder", r"mcp:tracker")
        assert "$0.05" in bot.output_since_command, bot.output_since_command

        # /metrics, labelled by the config's names.
        metrics = scrape(dashboard, METRICS_TOKEN)
        assert re.search(
            r'^fleetwarden_mcp_calls_total\{outcome="ok",server="tracker"\} 1\.0$', metrics, re.M
        ), metrics
        assert "hello door" not in metrics and 'name="echo"' not in metrics

        # A reload that takes the grant away: the next session is refused, as for no server.
        _config(config, http_mcp.url, dashboard, granted=False)
        bot.command("roster reload", r"(?i)reload", timeout=60)
        status, _, body = _post(
            url, token, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}
        )
        assert status == 404, body

        (tmp_path / "work" / "leave").write_text("")
        assert bot.close() == 0, bot.stderr[-3000:]
        assert CREDENTIAL not in bot.stdout + bot.stderr


ALERT = r"Approval\W+([a-z2-9]{4})\W"


def _call_in_background(
    url: str, token: str, session: str, text: str, answers: list[str]
) -> threading.Thread:
    """A tools/call of echo posted from a thread (it waits for the operator's answer): its
    body lands in ``answers``."""
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}},
    }
    thread = threading.Thread(
        target=lambda: answers.append(_post(url, token, call, session)[2]), daemon=True
    )
    thread.start()
    return thread


def test_a_tool_call_no_rule_allows_is_asked_in_chat_and_relayed_only_on_yes(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """Under the agent's default mode, with no rule for the tool, the door asks in chat
    (the tool as ``mcp__tracker__echo`` and its hostile arguments shown inert) before it
    relays: ``approve`` relays the call, ``deny`` refuses it with the reason, and the server
    never sees the refused one."""
    (tmp_path / "work").mkdir()
    config = tmp_path / "fleetwarden.yaml"
    _config(config, http_mcp.url, free_port(), granted=True, allowed=False)
    env = held_env(FW_TEST_METRICS_TOKEN=METRICS_TOKEN)
    with running_app(tmp_path, config, env, leftovers=sleeping_in(tmp_path)) as bot:
        bot.command("spawn coder", r"Agent coder started", timeout=120)
        url, token = _door_of_coder(tmp_path)
        session = _initialize(url, token)

        answers: list[str] = []
        asked = _call_in_background(url, token, session, "yes please", answers)
        first = bot.expect(ALERT + r".*coder.*mcp__tracker__echo", timeout=30).group(1)
        bot.command(f"approve {first}", rf"{first} allowed once")
        asked.join(30)
        assert answers and json.loads(answers[0])["result"]["content"][0]["text"] == "yes please"

        hostile = "\u202e@room ✅ Allowed \x1b[2J"
        answers.clear()
        asked = _call_in_background(url, token, session, hostile, answers)
        fresh = rf"^🔐 Approval\W+(?!{first})([a-z2-9]{{4}})\W.*coder.*mcp__tracker__echo"
        second = bot.expect(fresh, timeout=30).group(1)
        assert "\x1b[2J" not in bot.stdout and "\u202e" not in bot.stdout
        bot.command(f"deny {second} not on a Friday", rf"{second} denied")
        asked.join(30)
        assert answers and "not on a Friday" in answers[0], answers
        assert hostile not in json.dumps(http_mcp.requests())

        (tmp_path / "work" / "leave").write_text("")
        assert bot.close() == 0, bot.stderr[-3000:]
