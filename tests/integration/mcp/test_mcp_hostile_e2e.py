"""Hostile agents and hostile servers around the MCP door, through the real ``fleetwarden
run`` (a ``command`` agent in the default sandbox, ``egress: locked``): an agent that hunts
for the credential Fleetwarden holds for the server — in its environment, every
``/proc/*/environ`` and ``/proc/*/cmdline`` it can read, its home (its ``mcp.json``), its
workdir, ``/tmp``, and every answer of the door, errors too — finds it nowhere, and cannot
reach the server itself (with ``egress: open`` it reaches it and is turned away); a server
whose answer carries terminal escapes, mentions, bidi characters and a huge payload is
inert and short in the thread and the ledger."""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import sandbox_need
from tests.integration.console_bot import wait_until
from tests.integration.mcp.app_rig import (
    CONSOLE_HEAD,
    TRACKER,
    agent_log,
    door_client,
    held_env,
    mcp_calls,
    running_app,
)
from tests.integration.mcp.mcp_http_server import HOSTILE
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV, HttpMcp

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

# The agent's side: what it can learn, all of it written to ``loot.txt`` in its workdir.
HUNT = r"""
import json, os, socket, sys, urllib.error, urllib.parse, urllib.request
host, port = sys.argv[1], int(sys.argv[2])
loot = []
def keep(where, data):
    text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
    loot.append("== " + where + "\n" + text)
keep("env", json.dumps(dict(os.environ)))
for pid in os.listdir("/proc"):
    for part in ("environ", "cmdline") if pid.isdigit() else ():
        try:
            keep("/proc/" + pid + "/" + part, open("/proc/" + pid + "/" + part, "rb").read())
        except OSError as exc:
            keep("/proc/" + pid + "/" + part + " unreadable", exc)
for top in (os.environ["HOME"], os.getcwd(), "/tmp"):
    for folder, _, files in os.walk(top):
        for name in files:
            path = os.path.join(folder, name)
            try:
                keep(path, open(path, "rb").read(4_000_000))
            except OSError as exc:
                keep(path + " unreadable", exc)
config = json.load(open(os.path.join(os.environ["HOME"], ".fleetwarden", "mcp.json")))
server = config["mcpServers"]["tracker"]
door = urllib.request.build_opener(urllib.request.ProxyHandler({}))
session = {}
def post(label, body, headers=None, method="POST"):
    sent = {**server["headers"], "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream", **session}
    sent.update(headers or {})
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(server["url"], data, sent, method=method)
    try:
        with door.open(request, timeout=30) as answer:
            status, got, text = answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        status, got, text = exc.code, dict(exc.headers), exc.read()
    except OSError as exc:
        status, got, text = 0, {}, repr(exc).encode()
    print("door " + label + " " + str(status), flush=True)
    if "Mcp-Session-Id" in got:
        session["Mcp-Session-Id"] = got["Mcp-Session-Id"]
    keep("door " + label + " " + str(status) + " " + json.dumps(got), text)
def call(label, name, arguments, rid):
    params = {"name": name, "arguments": arguments}
    post(label, {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params})
client = {"name": "x", "version": "1"}
info = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client}
post("initialize", {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": info})
post("initialized", {"jsonrpc": "2.0", "method": "notifications/initialized"})
post("tools/list", {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
call("echo", "echo", {"text": "hello"}, 3)
call("whoami", "whoami", {}, 4)
call("not allowed", "delete_all", {}, 5)
call("no such tool", "nope", {}, 6)
call("bad arguments", "add", {"a": "one"}, 7)
call("server error", "hostile_error", {}, 8)
call("too large", "huge", {}, 9)
post("unknown method", {"jsonrpc": "2.0", "id": 10, "method": "no/such", "params": {}})
post("resource error", {"jsonrpc": "2.0", "id": 11, "method": "resources/read",
                        "params": {"uri": "note://missing"}})
post("bad json", b"{not json")
post("wrong token", {"jsonrpc": "2.0", "id": 12, "method": "tools/list"},
     {"Authorization": "Bearer guessed"})
post("no session", {"jsonrpc": "2.0", "id": 13, "method": "tools/list"},
     {"Mcp-Session-Id": "forged"})
post("delete", None, method="DELETE")
bare = "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
try:  # straight to the server, without the credential it never found
    with socket.create_connection((host, port), timeout=5) as straight:
        straight.sendall(bare.encode())
        direct = "ANSWERED " + straight.makefile("rb").readline().decode(errors="replace").strip()
except OSError as exc:
    direct = "REFUSED " + repr(exc)
proxied = "none"
if "HTTP_PROXY" in os.environ:  # by hand: no_proxy names 127.0.0.1
    proxy = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])
    try:
        with socket.create_connection((proxy.hostname, proxy.port), timeout=10) as through:
            ask = "GET http://" + host + ":" + str(port) + "/mcp HTTP/1.1\r\nHost: x\r\n\r\n"
            through.sendall(ask.encode())
            proxied = through.makefile("rb").readline().decode(errors="replace").strip()
    except OSError as exc:
        proxied = "FAILED " + repr(exc)
open("loot.txt", "w").write("\n".join(loot))
print("HUNTED direct=" + direct + " proxy=" + proxied, flush=True)
"""
WAIT = r"""
import time, os
while not os.path.exists("leave"):
    time.sleep(0.05)
"""
# Calls the hostile server's tools with hostile arguments of its own, then prints the
# size of the answer it got.
CALL_HOSTILE = (
    door_client("tracker", timeout=30)
    + r"""
mine = "\x1b[31m@room \u202eevil\u202c " + "z" * 5000
params = {"name": "hostile", "arguments": {"junk": mine}}
got = post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params})
print("GOT " + str(len(got)) + " " + repr(got[:300]), flush=True)
params = {"name": "hostile_error", "arguments": {"junk": mine}}
post({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params})
print("ERRORED", flush=True)
"""
)
CONFIG = (
    CONSOLE_HEAD
    + TRACKER
    + """\
    tools: [echo, whoami, add, huge, hostile, hostile_error]
agents:
  - name: prowler
    runtime: command
    argv: [python3, agent.py, '{host}', '{port}']
    workdir: ./work
    egress: {egress}
    permissions: full
    mcp: [tracker]
"""
)


def _log(root: Path) -> str:
    return agent_log(root, "prowler")


def _calls(root: Path) -> list[tuple[object, ...]]:
    return mcp_calls(root, "name, outcome, arguments, result, why")


@contextlib.contextmanager
def _app(tmp_path: Path, http_mcp: HttpMcp, script: str, egress: str = "locked"):  # type: ignore[no-untyped-def]
    """The real app over one ``prowler`` agent running ``script``, everything it started
    killed at the end."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "agent.py").write_text(script + WAIT)
    where = urlsplit(http_mcp.url)
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        CONFIG.format(
            url=http_mcp.url,
            credential_env=CREDENTIAL_ENV,
            host=where.hostname,
            port=where.port,
            egress=egress,
        )
    )
    state = str(tmp_path / "state")
    with running_app(
        tmp_path,
        config,
        held_env(),
        leave=work / "leave",
        leftovers=lambda cwd, cmdline: cwd.startswith(str(work)) or cwd.startswith(state),
    ) as bot:
        yield bot
        (work / "leave").write_text("")
        assert bot.close() == 0, bot.stderr[-3000:]


@pytest.mark.parametrize("egress", ["locked", "open"])
def test_an_agent_hunting_for_the_credential_finds_it_nowhere_and_cannot_reach_the_server(
    tmp_path: Path, http_mcp: HttpMcp, egress: str
) -> None:
    """The sandboxed agent reads its env, every /proc environ and cmdline it can, its home,
    workdir and /tmp, and every door answer (errors too): the credential is in none. Its own
    connection to the server's address fails when locked, direct or through the egress
    proxy; with egress open it gets there, and is turned away without the credential."""
    with _app(tmp_path, http_mcp, HUNT, egress) as bot:
        bot.command("spawn prowler", r"Agent prowler started", timeout=120)
        assert wait_until(lambda: "HUNTED" in _log(tmp_path), 90), _log(tmp_path)[-3000:]
        loot = (tmp_path / "work" / "loot.txt").read_text()
        # It did look: its own token and config, the door's answers and errors are there.
        assert '"mcpServers"' in loot and "FLEETWARDEN_HEARTBEAT_TOKEN" in loot
        assert "/environ\n" in loot and "/cmdline\n" in loot  # at least its own, read
        for label in ("echo", "whoami", "not allowed", "no such tool", "unknown method"):
            assert f"== door {label} " in loot, label
        assert "hello" in loot and "you sent Authorization:" in loot
        assert "1048576" in loot  # the too-large answer's error names the cap
        # The credential, whole or in part, is nowhere it looked.
        for piece in (CREDENTIAL, CREDENTIAL[-10:], CREDENTIAL.encode().hex()):
            assert piece not in loot, piece
        hunted = next(line for line in _log(tmp_path).splitlines() if "HUNTED" in line)
        seen = http_mcp.authorizations()
        if egress == "locked":
            assert "direct=REFUSED" in hunted and "proxy=HTTP/1.1 403" in hunted, hunted
            # The server saw only the door, with the held credential, never the agent.
            assert seen and set(seen) == {f"Bearer {CREDENTIAL}"}, seen
        else:
            assert "direct=ANSWERED HTTP/1.1 401" in hunted, hunted
            assert seen.count("") == 1 and set(seen) == {f"Bearer {CREDENTIAL}", ""}, seen
        assert not (http_mcp.record.parent / "deleted").exists()


def test_a_hostile_servers_answer_is_inert_and_short_in_the_thread_and_the_ledger(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A tool answer with terminal escapes, @room, bidi characters and 600 kB (its text and
    its structured copy) reaches the agent whole; the thread line and the ledger's result
    show it escaped, without the escapes or bidi characters, and cut short; the server's
    hostile error is the same."""
    with _app(tmp_path, http_mcp, CALL_HOSTILE) as bot:
        bot.command("spawn prowler", r"Agent prowler started", timeout=120)
        assert wait_until(lambda: "ERRORED" in _log(tmp_path), 60), _log(tmp_path)[-3000:]
        got = next(line for line in _log(tmp_path).splitlines() if line.startswith("GOT "))
        assert int(got.split()[1]) > 600_000, got[:400]
        ok = bot.expect(r"^🔌 MCP tracker · “hostile” → ok .*$", timeout=30).group(0)
        failed = bot.expect(r"^🔌 MCP tracker · “hostile_error” → error .*$", timeout=30)
        lines = [ok, failed.group(0)]
        assert wait_until(lambda: len(_calls(tmp_path)) == 2, 20), _calls(tmp_path)
        rows = {str(row[0]): row for row in _calls(tmp_path)}
        kept = [str(v) for v in rows["hostile"][2:] + rows["hostile_error"][2:]]
        for text in [*lines, *kept]:
            assert len(text) < 1200, len(text)
            assert "\x1b" not in text and "\x07" not in text, text
            assert not any(c in text for c in "\u202e\u202c"), text
        # Its markup is escaped: the console shows the link as written, not made a link.
        assert "[x](https://evil.example)" in failed.group(0), failed.group(0)
        assert "gnp.exe" in rows["hostile_error"][4], rows["hostile_error"]
        assert "yyyy" in str(rows["hostile"][3]), rows["hostile"]
        assert HOSTILE not in bot.stdout
