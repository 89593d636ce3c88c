"""What an agent on an SSH host holds is not there for another user of that host: the real
`fleetwarden run`, a real OpenSSH server on 127.0.0.2 as the host (its own Unix user), the
other test host's user standing for an unprivileged local user of the same machine, and
the strict fake provider behind the metering proxy.

While a stub agent on box2 works, no process's argv (readable by everyone in ``/proc``)
ever carries one of its secrets — the provider key, its metering key, its heartbeat token —
nor is its environment readable; and the ports the link forwards to the orchestrator's
listeners on the host's loopback, open to every local user, answer nothing to a request
without the agent's own secret: no model request reaches the provider, no beat or ask is
taken."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, Turn, Usage
from tests.integration.console_bot import clean_env
from tests.integration.hosts.test_hosts_e2e import WAIT, _remote_agents, _started, _until
from tests.sshd_server import SshServer

pytestmark = pytest.mark.integration

KEY = "fake-held-hosts-key-0123456789abcdefghij"

# Run as the other user: every process's argv and environment it can read, and each
# request it can make to the forwarded ports and door sockets. The secrets come on stdin
# (never in this script's own argv), the answers go out as one JSON line.
PROBE = r"""
import json, os, socket, sys, urllib.error, urllib.request
given = json.load(sys.stdin)
secrets = [s.encode() for s in given["secrets"]]
found = {"argv": [], "environ_read": [], "answers": {}, "doors": {}}
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read()
    except OSError:
        continue
    if any(s in argv for s in secrets):
        found["argv"].append(argv.decode("utf-8", "replace"))
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = fh.read()
    except OSError:
        continue
    if any(s in env for s in secrets):
        found["environ_read"].append(pid)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
agent = given["agent"]
paths = [
    (f"/heartbeat/{agent}", {}),
    (f"/heartbeat/{agent}", {"X-Fleetwarden-Token": "guessed-token-0123456789"}),
    (f"/approval/{agent}", {"X-Fleetwarden-Token": "guessed-token-0123456789"}),
    (f"/ask/{agent}", {"X-Fleetwarden-Token": "guessed-token-0123456789"}),
    (f"/a/{agent}/anthropic/guessed-key-0123456789/v1/messages", {"x-api-key": "x"}),
    (f"/a/{agent}/anthropic/v1/messages", {"x-api-key": "x"}),
]
body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 8, "state": "working",
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
for port in given["ports"]:
    for n, (path, headers) in enumerate(paths):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", data=body, method="POST",
            headers={"Content-Type": "application/json", **headers})
        try:
            with opener.open(request, timeout=10) as reply:
                status = reply.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:
            status = f"unreachable: {exc}"
        found["answers"][f"{n}: {port}{path}"] = status
for door in given["doors"]:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.connect(door)
        found["doors"][door] = "connected"
    except OSError as exc:
        found["doors"][door] = type(exc).__name__
    finally:
        sock.close()
print(json.dumps(found))
"""


class ArgvWatch:
    """Every distinct argv of every process on the machine, read from ``/proc`` every few
    milliseconds while it runs (a secret passed on a command line for a moment counts)."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ArgvWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:
                        with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                            self.seen.add(fh.read())
                    except OSError:
                        continue
            self._stop.wait(0.005)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode("utf-8", "replace") for k, v in pairs}


def _agent_secrets(pid: int) -> list[str]:
    """The secrets the agent process was given: its heartbeat token, and the key in its
    metering URL (``…/a/NAME/PROVIDER/KEY``)."""
    env = _environ(pid)
    found = [env["FLEETWARDEN_HEARTBEAT_TOKEN"]]
    url = urlsplit(env["ANTHROPIC_BASE_URL"])
    found.append(url.path.rstrip("/").rsplit("/", 1)[1])
    return [secret for secret in found if len(secret) >= 16]


def _listener_tokens(state: Path) -> list[str]:
    """Every token the orchestrator's loopback listeners keep in its state dir."""
    tokens = []
    for name in ("heartbeat.json", "metering.json"):
        record = json.loads((state / name).read_text())
        tokens += [str(t) for t in record.get("tokens", {}).values()]
    return tokens


@pytest.mark.skipif(os.geteuid() != 0, reason="needs two users on the host: run as root")
def test_another_user_of_the_host_finds_no_secret_and_no_open_door(
    tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer]
) -> None:
    up, neighbour = ssh_hosts
    known = tmp_path / "known_hosts"
    known.write_text(up.known_hosts_line() + "\n")
    state_dir, where = up.state_dir("fw-held")
    usage = Usage(input=100, output=10)
    with fake_provider_thread(
        default=Turn(text="held-answer", usage=usage), accept=Accepted(api_keys=frozenset({KEY}))
    ) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(
            "state_dir: ./state\n"
            "connectors: {console: {}}\n"
            "providers:\n"
            f"  anthropic: {{upstream: '{fake.base_url}'}}\n"
            "accounts:\n"
            "  team: {kind: api_key, provider: anthropic, key_env: FW_TEAM_KEY}\n"
            "hosts:\n"
            f"  - {{name: box2, ssh: '{up.ssh_target}', key_file: '{up.client_key}',"
            f" known_hosts: '{known}', state_dir: {state_dir}}}\n"
            "agents:\n"
            "  - {name: asker, runtime: stub, backend: tmux, host: box2, egress_allow: [],"
            " model: claude-haiku-4-5}\n"
        )
        with ArgvWatch() as argv:
            bot = _started(tmp_path, config, "box2", env=clean_env(FW_TEAM_KEY=KEY))
            try:
                bot.command('spawn asker --prompt "ask 1"', r"asker", timeout=WAIT)
                _until(bot, "logs asker", r"answer 1/1: held-answer")
                [pid] = _remote_agents(up.user)
                held = [KEY, *_agent_secrets(pid), *_listener_tokens(tmp_path / "state")]
                secrets = list(dict.fromkeys(held))
                asked = len(fake.requests)
                ports = json.loads((where / "forwards.json").read_text()).values()
                doors = [str(p) for p in (where / "agents" / "asker").rglob("*.sock")]
                probe = subprocess.run(
                    ["runuser", "-u", neighbour.user, "--", "python3", "-I", "-c", PROBE],
                    input=json.dumps(
                        {"secrets": secrets, "agent": "asker", "ports": list(ports), "doors": doors}
                    ),
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                    cwd="/",
                )
                assert probe.returncode == 0, probe.stderr
                found = json.loads(probe.stdout)
                # No ask was taken from the neighbour (waiting for the answer itself, never an
                # agent's mirrored output that may come first).
                _until(bot, "pending", r"^No approval requests are open\.")
                _until(bot, "logs asker", r"answer 1/1: held-answer")  # the agent still works
                bot.command("stop asker", r"(?i)stopped", timeout=WAIT)
                bot.send("quit")
                assert bot.wait(timeout=WAIT) == 0
            finally:
                if bot.proc.poll() is None:
                    bot.kill()
    assert len(secrets) >= 3 and ports and doors, (secrets, ports, doors)
    assert found["argv"] == [] and found["environ_read"] == [], found
    assert found["answers"] and all(
        isinstance(status, int) and status in (401, 403, 404)
        for status in found["answers"].values()
    ), found["answers"]
    assert all(result == "PermissionError" for result in found["doors"].values()), found["doors"]
    assert len(fake.requests) == asked  # nothing the neighbour sent reached the provider
    leaked = [cmd for cmd in argv.seen if any(s.encode() in cmd for s in secrets)]
    assert leaked == [], leaked
