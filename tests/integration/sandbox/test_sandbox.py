"""Agents in their sandboxes, against the real bubblewrap and egress door: a hostile agent
(tests/fakes/agents/hostile_agent.py, run by the `command` runtime) tries to read Fleetwarden's
state, config, environment and other agents' files, to see and signal Fleetwarden, to write
outside its own places and to reach hosts around the proxy — and every attempt fails,
while a well-behaved agent beside it heartbeats and reaches its proxy. Fork bombs and
agents that ignore SIGTERM are stopped with everything they started."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket as socketlib
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.app.assembly import tmux_socket_name
from fleet.sandbox.host.procs import namespace_pids, sandbox_init_pid
from tests import sandbox_need
from tests.integration.console_bot import ROSTER_HEAD, ConsoleBot, clean_env, pid_alive, wait_until

pytestmark = [
    pytest.mark.integration,
    sandbox_need.BWRAP,
]

HOSTILE = Path(__file__).parents[2] / "fakes" / "agents" / "hostile_agent.py"
RESULT_TIMEOUT = 30.0


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.server.server_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    """Plain HTTP servers on three loopback addresses: host → port."""
    started = []
    for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        server = ThreadingHTTPServer((host, 0), _Hello)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    yield {s.server_address[0]: s.server_address[1] for s in started}  # type: ignore[misc]
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def operator_home() -> Iterator[Path]:
    """A HOME for Fleetwarden outside the test's directory, with a key in it."""
    home = Path("/var/tmp") / f"fw-operator-home-{uuid.uuid4().hex}"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_fake").write_text("fake-operator-key\n")
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def host_socket() -> Iterator[Path]:
    """A Unix socket the host listens on under /run, where D-Bus and databases keep theirs
    (elsewhere when /run is not writable: then the attack proves less)."""
    where = Path("/run") if os.access("/run", os.W_OK) else Path("/var/tmp")
    path = where / f"fw-sandbox-{uuid.uuid4().hex[:12]}.sock"
    server = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    server.bind(str(path))
    server.listen(5)
    yield path
    server.close()
    path.unlink(missing_ok=True)


def cmdline_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def agent_entry(name: str, workdir: str, extra: str = "") -> str:
    return (
        f"  - name: {name}\n    runtime: command\n"
        f"    argv: [{sys.executable}, -I, {HOSTILE.name}]\n    workdir: ./{workdir}\n{extra}"
    )


def results(log: Path, since: int = 0) -> dict[str, tuple[str, str]]:
    """The latest ``RESULT name verdict detail`` lines in an agent's log after ``since``."""
    found: dict[str, tuple[str, str]] = {}
    text = log.read_bytes()[since:].decode(errors="replace") if log.exists() else ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("RESULT "):
            parts = [*line.split(" ", 3), "", ""]
            found[parts[1]] = (parts[2], parts[3])
    return found


def attack(bot: ConsoleBot, log: Path, agent: str, *words: str) -> dict[str, tuple[str, str]]:
    """Have ``agent`` run the named attacks; their results."""
    since = log.stat().st_size
    for word in words:
        bot.send(f"send {agent} {word}")
    expected = set(words) - {"all"}
    done = wait_until(
        lambda: (
            expected <= set(results(log, since))
            and ("all" not in words or "proxy" in results(log, since))
        ),
        timeout=RESULT_TIMEOUT,
    )
    got = results(log, since)
    assert done, f"no results for {words} from {agent}: {got}\nlog: {log.read_text()[-2000:]}"
    return got


def write_targets(
    workdir: Path, tmp_path: Path, bot: ConsoleBot, servers: dict[str, int], sock: Path
) -> Path:
    state = tmp_path / "state"
    outside_root = Path("/var/tmp") / f"fw-sandbox-{uuid.uuid4().hex}"
    (workdir / "targets.json").write_text(
        json.dumps(
            {
                "metering": str(state / "metering.json"),
                "config": str(tmp_path / "fleetwarden.yaml"),
                "operator_key": str(Path(bot.env["HOME"]) / ".ssh" / "id_fake"),
                "other_home": str(state / "agents" / "good" / "home" / "secret.txt"),
                "other_log": str(state / "agents" / "good" / "output.log"),
                "fleetwarden_pid": bot.proc.pid,
                "outside": str(tmp_path / "outside.txt"),
                "outside_root": str(outside_root),
                "host_socket": str(sock),
                "connect": {
                    "other_host": f"127.0.0.2:{servers['127.0.0.2']}",
                    "host_loopback": f"127.0.0.1:{servers['127.0.0.1']}",
                },
                "via_proxy": {
                    "allowed": f"http://127.0.0.3:{servers['127.0.0.3']}/",
                    "not_listed": f"http://127.0.0.2:{servers['127.0.0.2']}/",
                },
            }
        )
    )
    return outside_root


FILE_AND_PROCESS_ATTACKS = (
    "metering",
    "config",
    "operator_key",
    "other_home",
    "other_log",
    "environ",
    "see_fleetwarden",
    "kill_fleetwarden",
    "write_outside",
    "write_root",
    "host_socket",
)
ALLOWED_TO_AGENT = ("write_home", "write_tmp", "write_workdir", "heartbeat", "proxy")


def assert_contained(got: dict[str, tuple[str, str]]) -> None:
    for name in FILE_AND_PROCESS_ATTACKS:
        assert got[name][0] == "denied", f"{name} was not stopped: {got[name]}"
    for name in ALLOWED_TO_AGENT:
        assert got[name][0] == "open", f"{name} should work: {got[name]}"


LOCKED_ROSTER = (
    ROSTER_HEAD
    + """\
{hostile}{good}"""
)


@pytest.fixture
def locked_deployment(tmp_path: Path) -> Path:
    for name in ("hostile-work", "good-work"):
        (tmp_path / name).mkdir()
        # In its workdir: the sandbox's /tmp is its own, so a checkout under the host's
        # /tmp (a CI runner's) is not where the agent can read its script.
        shutil.copy(HOSTILE, tmp_path / name / HOSTILE.name)
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        LOCKED_ROSTER.format(
            hostile=agent_entry(
                "hostile", "hostile-work", "    egress: locked\n    egress_allow: [github.com]\n"
            ),
            good=agent_entry("good", "good-work"),  # locked by default
        )
    )
    (tmp_path / "good-work" / "targets.json").write_text("{}")
    return config


def test_a_locked_hostile_agent_reaches_nothing_but_its_doors_while_a_good_one_works(
    locked_deployment: Path,
    tmp_path: Path,
    servers: dict[str, int],
    operator_home: Path,
    host_socket: Path,
) -> None:
    """Every file, process and network attack of a locked agent fails; its proxy and
    heartbeat work, an address off the list gets 403 from its egress door, counted in
    `egress NAME` and `ps`; `egress block` closes the door, also after a restart of
    Fleetwarden (which reattaches the doors), until `egress unblock`. A well-behaved agent,
    locked by default, beside it heartbeats and reaches its proxy."""
    state = tmp_path / "state"
    env = clean_env(HOME=str(operator_home))
    bot = ConsoleBot(tmp_path, "--config", str(locked_deployment), env=env)
    bot.command("spawn good", r"Agent good started")
    (state / "agents" / "good" / "home" / "secret.txt").write_text("fake-secret-of-good\n")
    outside_root = write_targets(tmp_path / "hostile-work", tmp_path, bot, servers, host_socket)
    bot.command("spawn hostile", r"Agent hostile started")
    assert (state / "metering.json").exists()
    good_log, log = (
        state / "agents" / "good" / "output.log",
        state / "agents" / "hostile" / "output.log",
    )

    good = attack(bot, good_log, "good", "heartbeat", "proxy")
    assert good["heartbeat"][0] == "open" and good["heartbeat"][1].startswith("http 2"), good
    assert good["proxy"][0] == "open", good

    got = attack(bot, log, "hostile", "all", "connect_other_host", "connect_host_loopback")
    assert_contained(got)
    assert got["heartbeat"][1].startswith("http 2"), got["heartbeat"]
    assert got["connect_other_host"][0] == "denied", got
    assert got["connect_host_loopback"][0] == "denied", got
    assert not (tmp_path / "outside.txt").exists() and not outside_root.exists()
    assert (tmp_path / "hostile-work" / "mine.txt").exists()

    got = attack(bot, log, "hostile", "get_allowed", "get_not_listed")
    assert got["get_allowed"][0] == "denied" and "403" in got["get_allowed"][1], got
    assert got["get_not_listed"][0] == "denied" and "403" in got["get_not_listed"][1], got
    bot.command("egress hostile", r"(?s)Refused: 2 attempt.*127\.0\.0\.3:\d+.*allow-list")
    bot.command("ps", r"(?m)^hostile\s.*\s2\s*$")  # the last column: egress refused
    told = r"hostile\W+ 2 egress attempt\(s\) refused since the last notice"
    # One notice, within the flush interval (it may come before or after the commands).
    assert wait_until(lambda: re.search(told, bot.stdout) is not None, timeout=RESULT_TIMEOUT)
    got = attack(bot, log, "hostile", "get_not_listed")
    bot.command("egress hostile", r"Refused: 3 attempt")
    assert len(re.findall(r"egress attempt\(s\) refused", bot.stdout)) == 1  # one an hour

    bot.command("egress block hostile", r"Egress of hostile blocked")
    got = attack(bot, log, "hostile", "get_allowed", "heartbeat", "proxy")
    assert got["get_allowed"][0] == "denied" and "403" not in got["get_allowed"][1], got
    assert got["heartbeat"][0] == "open" and got["proxy"][0] == "open", got

    bot.kill()  # a crash: the agents keep running, and the next start reattaches them
    second = ConsoleBot(tmp_path, "--config", str(locked_deployment), env=env)
    second.command("ps", r"hostile\s+command\s+running")
    got = attack(second, log, "hostile", "heartbeat", "proxy", "get_allowed")
    assert got["heartbeat"][0] == "open" and got["proxy"][0] == "open", got
    assert "403" not in got["get_allowed"][1], got  # the block outlived the restart
    second.command("egress unblock hostile", r"Egress of hostile unblocked")
    got = attack(second, log, "hostile", "get_allowed")
    assert got["get_allowed"][0] == "denied" and "403" in got["get_allowed"][1], got

    second.command("stop hostile", r"Stopped hostile")
    second.command("stop good", r"Stopped good")
    assert second.close() == 0


def test_an_open_hostile_agent_in_tmux_cannot_touch_fleetwarden_or_other_agents(
    tmp_path: Path, servers: dict[str, int], operator_home: Path, host_socket: Path
) -> None:
    """The same file and process attacks from a tmux agent (egress open) fail inside its
    pane; it still writes its own places and reaches its proxy and heartbeat."""
    for name in ("hostile-work", "good-work"):
        (tmp_path / name).mkdir()
        # In its workdir: the sandbox's /tmp is its own, so a checkout under the host's
        # /tmp (a CI runner's) is not where the agent can read its script.
        shutil.copy(HOSTILE, tmp_path / name / HOSTILE.name)
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        LOCKED_ROSTER.format(
            hostile=agent_entry("hostile", "hostile-work", "    backend: tmux\n    egress: open\n"),
            good=agent_entry("good", "good-work", "    egress: open\n"),
        )
    )
    state = tmp_path / "state"
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(HOME=str(operator_home)))
    try:
        bot.command("spawn good", r"Agent good started")
        (state / "agents" / "good" / "home" / "secret.txt").write_text("fake-secret-of-good\n")
        outside_root = write_targets(tmp_path / "hostile-work", tmp_path, bot, servers, host_socket)
        bot.command("spawn hostile", r"Agent hostile started")
        log = state / "agents" / "hostile" / "output.log"
        assert wait_until(lambda: "hostile agent ready" in log.read_text())
        got = attack(bot, log, "hostile", "all")
        assert_contained(got)
        assert not (tmp_path / "outside.txt").exists() and not outside_root.exists()
        bot.command("stop hostile", r"Stopped hostile")
        bot.command("stop good", r"Stopped good")
        assert bot.close() == 0
    finally:
        socket = tmux_socket_name(state)
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


BOMB = """\
i=0
while [ $i -lt 1000 ]; do
  if [ $((i % 100)) -eq 0 ]; then setsid sleep 600 & else sleep 600 & fi
  i=$((i + 1))
done
echo forked
wait
"""

STUBBORN = """\
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
for _ in range(5):
    if os.fork() == 0:
        os.setsid()
        time.sleep(600)
        os._exit(0)
print("stubborn ready", flush=True)
time.sleep(600)
"""

BOMB_ROSTER = (
    ROSTER_HEAD
    + """\
  - name: bomb
    runtime: command
    argv: [sh, {bomb}]
    workdir: ./bomb-work
  - name: stubborn
    runtime: command
    argv: [{python}, -I, {stubborn}]
    workdir: ./stubborn-work
"""
)


def init_pid_of(state: Path, agent: str) -> int:
    runs = sorted((state / "agents" / agent / "runs").iterdir())
    pid = sandbox_init_pid(runs[-1])
    assert pid is not None, f"no sandbox init recorded for {agent}"
    return pid


def test_a_fork_bomb_and_an_agent_that_ignores_sigterm_are_stopped_completely(
    tmp_path: Path,
) -> None:
    """1000 sleeping children (some in their own sessions) and a SIGTERM-ignoring agent
    with children of its own: `stop` leaves no process of either sandbox alive, and
    ``namespace_pids`` found them all before."""
    # The scripts sit in the agents' workdirs: the config's directory is hidden from them.
    bomb, stubborn = tmp_path / "bomb-work" / "bomb.sh", tmp_path / "stubborn-work" / "stubborn.py"
    for script, text in ((bomb, BOMB), (stubborn, STUBBORN)):
        script.parent.mkdir()
        script.write_text(text)
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(BOMB_ROSTER.format(bomb=bomb, stubborn=stubborn, python=sys.executable))
    state = tmp_path / "state"
    bot = ConsoleBot(tmp_path, "--config", str(config))
    bot.command("spawn bomb", r"Agent bomb started")
    bot.command("spawn stubborn", r"Agent stubborn started")
    bomb_log = state / "agents" / "bomb" / "output.log"
    stubborn_log = state / "agents" / "stubborn" / "output.log"
    assert wait_until(lambda: "forked" in bomb_log.read_text(), timeout=60)
    assert wait_until(lambda: "stubborn ready" in stubborn_log.read_text())
    bomb_pids = namespace_pids(init_pid_of(state, "bomb"))
    stubborn_pids = namespace_pids(init_pid_of(state, "stubborn"))
    assert len(bomb_pids) >= 1000 and len(stubborn_pids) >= 7
    assert bot.proc.pid not in bomb_pids + stubborn_pids

    bot.command("stop stubborn", r"Stopped stubborn", timeout=30)
    bot.command("stop bomb", r"Stopped bomb", timeout=60)
    assert wait_until(lambda: not any(map(pid_alive, bomb_pids + stubborn_pids)), timeout=30)
    bot.command("ps", r"bomb\s+command\s+stopped")
    assert bot.close() == 0


def test_without_bubblewrap_fleetwarden_says_so_and_refuses_sandboxed_agents(
    tmp_path: Path,
) -> None:
    """No bwrap on PATH: a notice at start names the problem and the fix; a sandboxed
    spawn is refused saying why; an agent with `sandbox: none` still starts."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\nconnectors:\n  console: {}\nagents:\n  - name: boxed\n"
        "  - name: loose\n    sandbox: none\n"
    )
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(PATH="/nonexistent"))
    bot.expect(r"Sandboxed agents cannot start on this host: bubblewrap is not installed")
    bot.command("spawn boxed", r"boxed cannot start sandboxed: .*sandbox: none")
    bot.command("spawn loose", r"Agent loose started")
    bot.command("stop loose", r"Stopped loose")
    assert bot.close() == 0
