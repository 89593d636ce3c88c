"""The real `fleetwarden run` with a `hosts:` section, against real OpenSSH servers on
loopback: it starts whatever its hosts do — one up, one whose host key is not on record,
one where nothing listens — and `hosts` in chat shows each: the first up with its load,
disk and tools, the refused one with the fix, the down one with why; problems first."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.console_bot import ConsoleBot
from tests.integration.hosts.rig import WAIT, until_up
from tests.integration.hosts.rig import entry as _entry
from tests.integration.hosts.rig import started as _started
from tests.integration.hosts.rig import until as _until
from tests.sshd_server import SshServer, free_port

pytestmark = pytest.mark.integration


def test_hosts_lists_an_up_a_refused_and_a_down_host(
    tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer]
) -> None:
    """The orchestrator starts with a refused and an unreachable host, says which and why,
    and `hosts` shows all three, the troubled ones first."""
    up, unknown = ssh_hosts
    known = tmp_path / "known_hosts"
    known.write_text(up.known_hosts_line() + "\n")
    nobody = f"{up.user}@127.0.0.5:{free_port('127.0.0.5')}"
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        "hosts:\n"
        + _entry("box2", up.ssh_target, up.client_key, known, up.state_dir("fw-list")[0])
        + _entry("box3", unknown.ssh_target, unknown.client_key, known, "~/fw-list")
        + _entry("box5", nobody, up.client_key, known, "~/fw-list")
    )
    bot = ConsoleBot(tmp_path, "--config", str(config))
    try:
        reply = ""
        deadline = time.monotonic() + WAIT
        # Until box2's first probe is in (its load column) and box3 is refused.
        while not (
            re.search(r"^box2 +up .* \d+\.\d\d", reply, re.M)
            and re.search(r"^box3 +refused", reply, re.M)
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"hosts never showed box2 probed and box3 refused:\n{reply}")
            time.sleep(0.2)
            bot.command("hosts", r"^local +up.*$", timeout=WAIT)
            reply = bot.output_since_command
        rows = [line for line in reply.splitlines() if re.match(r"(box\d|local) ", line)]
        names = [row.split()[0] for row in rows]
        assert names.index("box3") < names.index("box2")  # problems first
        assert names.index("box5") < names.index("box2")
        box2 = next(row for row in rows if row.startswith("box2 "))
        assert "0/4" in box2 and "GiB" in box2
        assert "fleetwarden hosts trust box3" in reply
        assert unknown.fingerprint() in reply
        assert re.search(r"^box5 +(down|connecting)", reply, re.M)
        bot.send("quit")
        assert bot.wait(timeout=WAIT) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    log = (tmp_path / "state" / "fleetwarden.log").read_text()
    assert "host box3 refused" in log


def test_a_stub_agent_on_a_host_runs_there_and_answers_like_a_local_one(
    tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer]
) -> None:
    """`spawn` starts a roster agent on box2 in tmux there (as box2's user), its output
    is mirrored here for `logs`, `send` reaches it, its heartbeats come through the host's
    forward, `ps` shows its host, `stop` ends it there; a restart of the orchestrator
    reattaches it (never a second one)."""
    up, _other = ssh_hosts
    known = tmp_path / "known_hosts"
    known.write_text(up.known_hosts_line() + "\n")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        "defaults: {runtime: stub, egress_allow: []}\n"
        "hosts:\n"
        + _entry("box2", up.ssh_target, up.client_key, known, up.state_dir("fw-stub")[0])
        + "agents:\n"
        "  - {name: r1, runtime: stub, backend: tmux, host: box2, egress_allow: []}\n"
        "  - {name: r2, runtime: stub, backend: tmux, host: any, egress_allow: []}\n"
    )

    bot = _started(tmp_path, config, "box2")
    try:
        bot.command("spawn r1", r"r1.*(started|running)", timeout=WAIT)
        pane = _remote_agents(up.user)
        assert len(pane) == 1, pane  # the stub runs on box2, as box2's user
        # In a sandbox there: a pid namespace of its own, and (locked) a network of its own.
        assert _namespaced(pane[0]) == (True, True)
        bot.command("send r1 hello there", r"(?i)sent|typed|delivered", timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while "hello there" not in bot.output_since_command:
            if time.monotonic() > deadline:
                raise AssertionError(f"the agent's echo never showed:\n{bot.output_since_command}")
            time.sleep(0.5)
            bot.command("logs r1", r"(?s).+", timeout=WAIT)
        bot.command("ps", r"^r1 .*$", timeout=WAIT)
        assert re.search(r"^r1 +box2 +stub +(running|idle)", bot.output_since_command, re.M), (
            bot.output_since_command
        )
        # `host: any` places an agent on the host with room; `spawn --host` one for a spawn.
        bot.command("spawn r2", r"r2.*(started|running)", timeout=WAIT)
        bot.command("spawn adhoc --host box2", r"adhoc.*(started|running)", timeout=WAIT)
        reply = _until(bot, "ps", r"^r2 +box2 ")
        assert re.search(r"^adhoc +box2 +stub +(running|idle)", reply, re.M), reply
        assert len(_remote_agents(up.user)) == 3
        # A CLI the host lacks: the spawn says which host lacks which, and how to install it.
        bot.command("spawn lacking --runtime codex --host box2", r"lacking cannot start.*$")
        assert "host box2 has no codex — install it there" in bot.output_since_command
        # adhoc runs headless there (the defaults' backend): its input is a FIFO.
        bot.command("send adhoc over the fifo", r"(?i)sent|typed|delivered", timeout=WAIT)
        _until(bot, "logs adhoc", r"over the fifo")
        bot.command("stop r2", r"(?i)stopped r2", timeout=WAIT)
        bot.command("stop adhoc", r"(?i)stopped adhoc", timeout=WAIT)
        # freeze pauses it there (SIGSTOP to its process group on box2), resume continues it.
        bot.command('freeze r1 --reason "checking"', r"Froze r1", timeout=WAIT)
        assert _wait(lambda: _states(pane) == {"T"}), _states(pane)
        bot.command("resume r1", r"(?i)resumed|continued", timeout=WAIT)
        assert _wait(lambda: "T" not in _states(pane)), _states(pane)
        bot.send("quit")
        assert bot.wait(timeout=WAIT) == 0
        assert _remote_agents(up.user) == pane  # it outlived the orchestrator's SSH link
        bot = _started(tmp_path, config, "box2")
        bot.command("ps", r"^r1 .*$", timeout=WAIT)
        assert re.search(r"^r1 .*(running|idle)", bot.output_since_command, re.M)
        assert _remote_agents(up.user) == pane  # reattached, not launched again
        bot.command("stop r1", r"(?i)stopped", timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while _remote_agents(up.user):
            assert time.monotonic() < deadline, "the agent still runs on box2"
            time.sleep(0.2)
        bot.send("quit")
        assert bot.wait(timeout=WAIT) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()


def _remote_agents(user: str) -> list[int]:
    """The pids of stub agents running as ``user``."""
    import pwd

    uid = pwd.getpwnam(user).pw_uid
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(cmdline) > 3 and cmdline[3].endswith(b"stub_agent.py"):  # not its shim
            found.append(int(entry.name))
    return sorted(found)


def test_a_host_that_goes_away_leaves_its_agents_unknown_and_they_come_back(
    tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer], private_ssh_host: SshServer
) -> None:
    """box4's sshd stopped: its agent shows `unknown` (never ended, stalled or restarted)
    while box2's runs on; sshd back on the same port: the link comes back by itself, the
    same agent process answers and its output is mirrored again."""
    other, _ = ssh_hosts
    flaky = private_ssh_host
    known = tmp_path / "known_hosts"
    known.write_text(other.known_hosts_line() + "\n" + flaky.known_hosts_line() + "\n")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        "defaults: {heartbeat_timeout_seconds: 5, watchdog_interval_seconds: 5}\n"
        "hosts:\n"
        + _entry("box2", other.ssh_target, other.client_key, known, other.state_dir("fw-out")[0])
        + _entry("box4", flaky.ssh_target, flaky.client_key, known, flaky.state_dir("fw-out")[0])
        + "agents:\n"
        "  - {name: on2, runtime: stub, backend: tmux, host: box2, egress: open}\n"
        "  - {name: on4, runtime: stub, backend: tmux, host: box4, egress_allow: []}\n"
    )
    bot = _started(tmp_path, config, "box2", "box4")
    try:
        bot.command("spawn on2", r"on2.*(started|running)", timeout=WAIT)
        bot.command("spawn on4", r"on4.*(started|running)", timeout=WAIT)
        before = _remote_agents(flaky.user)
        assert len(before) == 1
        assert _namespaced(before[0]) == (True, True)  # sandboxed, locked
        assert [_namespaced(pid) for pid in _remote_agents(other.user)] == [(True, False)]
        attempts_before = _attempts(_until(bot, "hosts", r"^box4 +up"), "box4")
        flaky.stop()
        down_at = time.monotonic()
        reply = _until(bot, "ps", r"^on4 +box4 +stub +unknown \(host box4 (down|connecting)\)")
        assert re.search(r"^on2 +box2 +stub +(running|idle)", reply, re.M), reply
        # Over twice the heartbeat timeout and the watchdog's interval: still unknown.
        time.sleep(11)
        reply = _until(bot, "ps", r"^on4 +box4 +stub +unknown")
        assert re.search(r"^on2 +box2 +stub +(running|idle)", reply, re.M), reply
        assert _remote_agents(flaky.user) == before  # nothing there was touched
        tried = _attempts(_until(bot, "hosts", r"connection attempts so far"), "box4")
        # At most one a second (the first connection counted too).
        assert tried - attempts_before <= time.monotonic() - down_at + 2
        flaky.start()
        until_up(bot, "box4")
        _until(bot, "ps", r"^on4 +box4 +stub +(running|idle)")
        bot.command("send on4 back again", r"(?i)sent|typed|delivered", timeout=WAIT)
        _until(bot, "logs on4", r"back again")
        assert _remote_agents(flaky.user) == before  # the same process: reattached
        bot.command("stop on4", r"(?i)stopped", timeout=WAIT)
        bot.command("stop on2", r"(?i)stopped", timeout=WAIT)
        bot.send("quit")
        assert bot.wait(timeout=WAIT) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    log = (tmp_path / "state" / "fleetwarden.log").read_text()
    # Retried every second or more for ~15 s, said once: not at every attempt.
    assert log.count("unreachable (retrying): cannot reach host box4") == 1


def _states(pids: list[int]) -> set[str]:
    """Each live process's state letter (T: stopped)."""
    found = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        found.add(stat.rsplit(")", 1)[1].split()[0])
    return found


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _namespaced(pid: int) -> tuple[bool, bool]:
    """Whether process ``pid`` runs in a pid namespace of its own, and a network one."""
    status = Path(f"/proc/{pid}/status").read_text()
    nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
    own_net = os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    return len(nspid.split()) > 2, own_net


def _attempts(reply: str, host: str) -> int:
    """How many connection attempts `hosts` says ``host``'s link made (0 while it is up)."""
    found = re.search(rf"\*\*{host}\*\*: .*\((\d+) connection attempts so far\)", reply)
    return int(found.group(1)) if found else 0


DEEP = "deeper-than-a-socket-path-may-be-" + "x" * 40
"""A directory that puts an agent's doors here past a Unix socket's 108-byte path."""
EGRESS_CLIENT = (
    "import socket, sys, time\n"
    "s = socket.create_connection(('127.0.0.1', 3128), timeout=10)\n"
    "s.sendall(b'CONNECT not-on-the-list.example:443 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
    "print('answer:', s.recv(100).split(b'\\r\\n')[0].decode(), flush=True)\n"
    "time.sleep(600)\n"
)


def test_a_locked_agent_on_a_host_reaches_its_allow_lists_proxy_here(
    tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer]
) -> None:
    """An agent on box2 locked with an allow-list: its forward proxy answers inside its
    sandbox there (the door leads to its allow-list door here), refuses a name not on the
    list, and the refusal is counted against the agent in `ps`. The state dir here is deep:
    the door's path is longer than a socket's may be, and the host's forward still reaches
    it."""
    up, _ = ssh_hosts
    known = tmp_path / "known_hosts"
    known.write_text(up.known_hosts_line() + "\n")
    config = tmp_path / "fleetwarden.yaml"
    argv = ["python3", "-c", EGRESS_CLIENT]
    config.write_text(
        f"state_dir: ./{DEEP}/state\n"
        "connectors: {console: {}}\n"
        "hosts:\n"
        + _entry("box2", up.ssh_target, up.client_key, known, up.state_dir("fw-egress")[0])
        + "agents:\n"
        "  - {name: eg, runtime: command, backend: tmux, host: box2,"
        f" egress_allow: [github.com], argv: {json.dumps(argv)}}}\n"
    )
    bot = _started(tmp_path, config, "box2")
    try:
        bot.command("spawn eg", r"eg.*(started|running)", timeout=WAIT)
        reply = _until(bot, "logs eg", r"answer: HTTP/1.1 403")
        assert "answer: HTTP/1.1 403" in reply
        reply = _until(bot, "ps", r"^eg +box2 .* 1\s*$")
        bot.command("stop eg", r"(?i)stopped", timeout=WAIT)
        bot.send("quit")
        assert bot.wait(timeout=WAIT) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
