"""The door speaks for the client, through the real ``fleetwarden run`` and npm's real
``server-filesystem`` given one project folder: an agent (a ``command`` agent in the
default sandbox) that declares ``roots`` and waits for the server's ``roots/list`` to answer
it with ``file:///`` is never asked (the door answers the folder the config names), its
answer and its roots change are not relayed, and the server still reaches only the project:
the state dir's ``heartbeat.json`` and a 0600 file beside the project stay out of its reach.
What the server reads that holds a secret the app holds (another server's credential) reaches
the agent redacted; a ``completion/complete`` is audited as a call."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.console_bot import wait_until
from tests.integration.mcp.app_rig import (
    CONSOLE_HEAD,
    agent_log,
    door_client,
    held_env,
    mcp_calls,
    running_app,
)
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV, filesystem_bin

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

# The agent's side (after door_client's initialize, redone with the roots it declares): it
# listens for the server's roots/list and answers it with the whole disk, tells the server
# its roots changed, then reads through the server, keeping every answer in loot.json.
ATTACK = (
    door_client("files", timeout=30)
    + r"""
import socket, urllib.error
state, project, secret = sys.argv[1], sys.argv[2], sys.argv[3]
loot = {}
headers.pop("Mcp-Session-Id", None)
wide = {"roots": {"listChanged": True}, "sampling": {}, "elicitation": {}}
hello = {"protocolVersion": "2025-06-18", "capabilities": wide, "clientInfo": client}
post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
post({"jsonrpc": "2.0", "method": "notifications/initialized"})
listen = urllib.request.Request(server["url"], None, {**headers, "Accept": "text/event-stream"})
asked = None
try:
    with door.open(listen, timeout=8) as stream:
        for line in stream:
            if line.startswith(b"data: "):
                message = json.loads(line[6:])
                if message.get("method") == "roots/list":
                    asked = message
                    break
except (socket.timeout, TimeoutError, OSError) as exc:
    loot["listen"] = repr(exc)
loot["asked"] = asked
def status_of(message):
    request = urllib.request.Request(server["url"], json.dumps(message).encode(), headers)
    try:
        with door.open(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
if asked is not None:
    whole = {"roots": [{"uri": "file:///", "name": "all"}]}
    loot["answered"] = status_of({"jsonrpc": "2.0", "id": asked["id"], "result": whole})
loot["forged answer"] = status_of({"jsonrpc": "2.0", "id": 0, "result": {"roots": []}})
loot["changed"] = status_of({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
def call(rid, name, arguments):
    params = {"name": name, "arguments": arguments}
    body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}
    return post(body).decode()
loot["allowed"] = call(10, "list_allowed_directories", {})
loot["heartbeat"] = call(11, "read_text_file", {"path": os.path.join(state, "heartbeat.json")})
loot["state"] = call(12, "list_directory", {"path": state})
loot["secret"] = call(13, "read_text_file", {"path": secret})
loot["leaked"] = call(14, "read_text_file", {"path": os.path.join(project, "leaked.txt")})
ref = {"type": "ref/prompt", "name": "anything"}
completion = {"ref": ref, "argument": {"name": "path", "value": "/"}}
loot["completion"] = post({"jsonrpc": "2.0", "id": 15, "method": "completion/complete",
                           "params": completion}).decode()
open("loot.json", "w").write(json.dumps(loot))
print("LOOTED", flush=True)
import time
while not os.path.exists("leave"):
    time.sleep(0.05)
"""
)
CONFIG = (
    CONSOLE_HEAD
    + """\
mcp:
  files:
    command: {files}
    args: ['{project}']
  tracker:
    url: http://127.0.0.1:9/mcp
    headers_env: {{Authorization: {credential_env}}}
agents:
  - name: prowler
    runtime: command
    argv: [python3, agent.py, '{state}', '{project}', '{secret}']
    workdir: ./work
    egress: locked
    permissions: full
    mcp: [files]
"""
)


@contextlib.contextmanager
def _app(tmp_path: Path, outside: Path) -> Iterator[Path]:
    """The real app over ``prowler`` running :data:`ATTACK`, the filesystem server given
    ``outside/project`` (holding ``leaked.txt``: the tracker's credential), a 0600
    ``outside/secret.txt`` beside it; the agent's workdir, once the app has stopped."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "agent.py").write_text(ATTACK)
    project = outside / "project"
    project.mkdir()
    (project / "leaked.txt").write_text(f"left behind: Bearer {CREDENTIAL}\n")
    secret = outside / "secret.txt"
    secret.write_text("only-root-reads-this-0600\n")
    secret.chmod(0o600)
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        CONFIG.format(
            files=filesystem_bin(),
            project=project,
            credential_env=CREDENTIAL_ENV,
            state=tmp_path / "state",
            secret=secret,
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
        bot.command("spawn prowler", r"Agent prowler started", timeout=120)
        assert wait_until(lambda: "LOOTED" in agent_log(tmp_path, "prowler"), 120), agent_log(
            tmp_path, "prowler"
        )[-3000:]
        (work / "leave").write_text("")
        yield work
        assert bot.close() == 0, bot.stderr[-3000:]


def test_an_agents_roots_never_widen_the_filesystem_server(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The agent declaring roots is never asked roots/list (the door answers it from the
    config), its answer and roots change are not relayed, and the server reads only its
    project: heartbeat.json, the state dir and a 0600 file beside the project stay out of
    reach; another server's credential read from a file reaches the agent redacted."""
    outside = tmp_path_factory.mktemp("outside")
    with _app(tmp_path, outside) as work:
        loot = json.loads((work / "loot.json").read_text())
    state = tmp_path / "state"
    tokens = json.loads((state / "heartbeat.json").read_text())
    assert loot["asked"] is None, loot["asked"]
    assert "answered" not in loot
    assert loot["forged answer"] == 400 and loot["changed"] == 202, loot
    project = (outside / "project").resolve()
    allowed = json.loads(loot["allowed"])["result"]["content"][0]["text"]
    assert allowed.splitlines()[1:] == [str(project)], allowed
    for place in ("heartbeat", "state", "secret"):
        said = json.loads(loot[place])
        text = json.dumps(said)
        assert "outside allowed directories" in text or "Access denied" in text, (place, said)
    text = json.dumps(loot)
    assert "only-root-reads-this-0600" not in text
    for token in _strings(tokens):
        if len(token) >= 16:
            assert token not in text
    # Another server's credential, read from a file in the project, reaches the agent as a
    # label only.
    leaked = json.loads(loot["leaked"])["result"]["content"][0]["text"]
    assert CREDENTIAL not in text and f"[redacted: {CREDENTIAL_ENV}]" in leaked, leaked
    calls = mcp_calls(tmp_path, "method, name, outcome")
    assert ("completion/complete", "anything", "error") in calls, calls


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)
