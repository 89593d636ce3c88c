"""The MCP door for an agent on an SSH host: a locked ``command`` agent on box2 (a real
OpenSSH server on loopback) reads the ``$HOME/.fleetwarden/mcp.json`` its launch wrote there
and calls a tool of a token-protected server with plain HTTP. Its door answers inside its
sandbox on box2 and leads, through the host's heartbeat forward, to the MCP door here; the
server sees the credential Fleetwarden holds, the agent's side never has it, and the call is
in the thread and the ledger like a local one's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.console_bot import wait_until
from tests.integration.hosts.rig import WAIT, entry, started, until
from tests.integration.mcp.app_rig import door_client, held_env, mcp_calls
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV, HttpMcp
from tests.sshd_server import SshServer

pytestmark = pytest.mark.integration

# The agent: initialize and tools/call echo through the door its mcp.json names, with
# nothing but the standard library; prints the answer, writes what it can see of the
# credential (its environment and the mcp.json, whole) to its workdir, waits to be stopped.
CALLER = (
    door_client("tracker", 30)
    + """
import time
skills = os.path.join(os.environ["HOME"], ".fleetwarden", "skills")
print("SKILLS", sorted(os.listdir(skills)) if os.path.isdir(skills) else [], flush=True)
os.makedirs(os.path.join(skills, "planted"), exist_ok=True)  # for its next run to find
call = {"name": "echo", "arguments": {"text": "hello from box2"}}
body = post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
print("ANSWER", json.loads(body)["result"]["content"][0]["text"], flush=True)
with open("seen.json.part", "w") as seen:  # in its workdir on box2, unredacted
    json.dump({"env": dict(os.environ), "mcp.json": config}, seen)
os.rename("seen.json.part", "seen.json")
print("SEEN", flush=True)
time.sleep(600)
"""
)


def test_an_agent_on_an_ssh_host_calls_a_tool_through_the_door_here(
    tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer], http_mcp: HttpMcp
) -> None:
    """A locked command agent on box2 calls echo through the URL its mcp.json names: the
    answer comes back, the server saw Fleetwarden's credential (never the run token), the
    agent's environment and mcp.json on box2 hold no credential, and the call is audited
    as ok and told in the thread. A skill it planted there is gone at its next launch."""
    up, _ = ssh_hosts
    known = tmp_path / "known_hosts"
    known.write_text(up.known_hosts_line() + "\n")
    remote, state = up.state_dir("fw-mcp")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        "defaults: {stop_grace_seconds: 1}\n"
        "hosts:\n" + entry("box2", up.ssh_target, up.client_key, known, remote) + "mcp:\n"
        f"  tracker: {{url: '{http_mcp.url}', headers_env: {{Authorization: {CREDENTIAL_ENV}}}}}\n"
        "agents:\n"
        "  - name: caller\n"
        "    runtime: command\n"
        "    backend: tmux\n"
        "    host: box2\n"
        "    egress_allow: []\n"
        f"    argv: {json.dumps(['python3', '-c', CALLER])}\n"
        "    mcp: [tracker]\n"
        "    allow: [mcp__tracker__echo]\n"
    )
    bot = started(tmp_path, config, "box2", env=held_env())
    try:
        bot.command("spawn caller", r"caller.*(started|running)", timeout=WAIT)
        reply = until(bot, "logs caller", r"^> SEEN", within=90)
        assert "ANSWER hello from box2" in reply, reply
        # Written in its workdir under box2's user's home: it ran there.
        seen = (state / "agents" / "caller" / "work" / "seen.json").read_text()
        assert "FLEETWARDEN_HEARTBEAT_TOKEN" in seen and CREDENTIAL not in seen
        assert http_mcp.authorizations().count(f"Bearer {CREDENTIAL}") >= 2
        assert all(a == f"Bearer {CREDENTIAL}" for a in http_mcp.authorizations())

        def kept() -> list[tuple[object, ...]]:
            return mcp_calls(tmp_path, "agent, server, name, outcome")

        assert wait_until(lambda: len(kept()) == 1, 20), kept()
        assert kept() == [("caller", "tracker", "echo", "ok")]
        assert wait_until(lambda: "🔌 MCP tracker · “echo” → ok" in bot.stdout, 20), bot.stdout
        bot.command("stop caller", r"(?i)stopped", timeout=WAIT)
        # Its next run finds no skill it planted: the launch empties the skills folder there.
        assert (
            state / "agents" / "caller" / "home" / ".fleetwarden" / "skills" / "planted"
        ).is_dir()
        bot.command("spawn caller", r"caller.*(started|running)", timeout=WAIT)
        reply = until(bot, "logs caller", r"(?s)SKILLS.*SKILLS", within=90)
        assert reply.count("SKILLS []") == 2, reply
        bot.command("stop caller", r"(?i)stopped", timeout=WAIT)
        bot.send("quit")
        assert bot.wait(timeout=WAIT) == 0
        assert CREDENTIAL not in bot.stdout + bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
