"""A run's token lives as long as the run, through the real ``fleetwarden run`` console:
``command`` agents print the token their runtime gives them, and the test uses it from
outside, as anyone who got hold of a leaked token would — a beat to the heartbeat endpoint,
``fw-msg peers`` (the peer door), ``git ls-remote`` of the agent's line (the git door) and
``fw-forge read`` (the forge door).

Once a run ends (``stop``, ``restart``, a failure the watchdog restarts) its token is
refused at every door, and the next run gets a new one that is taken — its own pushes
through its kept checkout's ``origin`` included. A tmux agent that goes on while
Fleetwarden restarts keeps its token; the token of an agent stopped before the restart,
and of one whose run ended while Fleetwarden was away, is refused after it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import fleet.forge.door
import fleet.peers
from bot.app.assembly import tmux_socket_name
from tests import sandbox_need
from tests.git_upstream import GitUpstream, served_app
from tests.integration.console_bot import ConsoleBot, processes_where, wait_until

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

UPSTREAM_TOKEN = "ghp_runTokensUpstreamTokenNoAgentHolds0123"
FW_MSG = Path(fleet.peers.__file__).parent / "bin" / "fw-msg"  # what agents run
FW_FORGE = Path(fleet.forge.door.__file__).parent / "bin" / "fw-forge"
TOKEN_LINE = re.compile(r"^TOKEN-(\d+)=(\S+)$", re.MULTILINE)

# Each run prints its number and token, commits a file and pushes it through its origin.
CODER = """
n=$(( $(ls run-*.txt 2>/dev/null | wc -l) + 1 ))
echo "TOKEN-$n=$FLEETWARDEN_HEARTBEAT_TOKEN"
echo "run $n" > run-$n.txt && git add run-$n.txt && git commit -qm "run $n"
if git push -q origin HEAD; then echo "PUSH-$n=taken"; else echo "PUSH-$n=refused"; fi
echo "READY-$n"
sleep 600
"""
# Prints its token; ends by itself once the file ``leave`` is in its workdir.
WAITER = """
echo "TOKEN-1=$FLEETWARDEN_HEARTBEAT_TOKEN"
echo READY-1
while [ ! -e leave ]; do sleep 0.05; done
"""


def yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@pytest.fixture
def tokened_upstream(tmp_path: Path) -> Iterator[GitUpstream]:
    with served_app(tmp_path / "upstream", UPSTREAM_TOKEN) as served:
        yield served


def log_of(root: Path, agent: str) -> str:
    path = root / "state" / "agents" / agent / "output.log"
    return path.read_text(errors="replace") if path.exists() else ""


def token_of(root: Path, agent: str, run: int, timeout: float = 120) -> str:
    """The token run number ``run`` of ``agent`` printed, once it said it is ready."""
    assert wait_until(lambda: f"READY-{run}" in log_of(root, agent), timeout=timeout), log_of(
        root, agent
    )
    tokens = {int(n): token for n, token in TOKEN_LINE.findall(log_of(root, agent))}
    return tokens[run]


def port_of(root: Path) -> int:
    port = json.loads((root / "state" / "heartbeat.json").read_text())["port"]
    assert isinstance(port, int)
    return port


def beat(port: int, agent: str, token: str) -> int:
    """The heartbeat endpoint's answer to a beat of ``agent`` with ``token``."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/heartbeat/{agent}",
        data=b"",
        headers={"X-Fleetwarden-Token": token},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def door_env(port: int, agent: str, token: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FLEETWARDEN_HEARTBEAT_URL": f"http://127.0.0.1:{port}/heartbeat/{agent}",
        "FLEETWARDEN_HEARTBEAT_TOKEN": token,
    }


def peers(port: int, agent: str, token: str) -> subprocess.CompletedProcess[str]:
    """``fw-msg peers`` as ``agent`` with ``token`` (the peer door)."""
    env = door_env(port, agent, token)
    return subprocess.run(
        [str(FW_MSG), "peers"], env=env, capture_output=True, text=True, timeout=60
    )


def forge_read(port: int, agent: str, token: str) -> subprocess.CompletedProcess[str]:
    """``fw-forge read 1`` as ``agent`` with ``token`` (the forge door; no forge run)."""
    env = door_env(port, agent, token)
    return subprocess.run(
        [str(FW_FORGE), "read", "1"], env=env, capture_output=True, text=True, timeout=60
    )


def ls_remote(port: int, agent: str, token: str) -> subprocess.CompletedProcess[str]:
    """``git ls-remote`` of ``agent``'s line through the git door, ``token`` the password."""
    url = f"http://{agent}:{token}@127.0.0.1:{port}/git/{agent}/app.git"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "ls-remote", url], env=env, capture_output=True, text=True, timeout=60
    )


def taken_everywhere(port: int, agent: str, token: str, *, git: bool = True) -> None:
    assert beat(port, agent, token) == 204
    said = peers(port, agent, token)
    assert said.returncode == 0, said.stdout + said.stderr
    if git:
        listed = ls_remote(port, agent, token)
        assert listed.returncode == 0 and f"refs/heads/fw/{agent}/1" in listed.stdout, listed
        read = forge_read(port, agent, token)  # let in: it has no forge run to read
        assert read.returncode == 1 and "no forge run" in read.stderr, read


def refused_everywhere(port: int, agent: str, token: str, *, git: bool = True) -> None:
    assert beat(port, agent, token) == 403
    said = peers(port, agent, token)
    assert said.returncode != 0
    assert "the peer door does not take this agent's FLEETWARDEN_HEARTBEAT_TOKEN" in said.stderr
    if git:
        listed = ls_remote(port, agent, token)
        assert listed.returncode != 0 and "refs/heads" not in listed.stdout, listed
        assert token not in listed.stderr
        read = forge_read(port, agent, token)
        assert read.returncode != 0
        assert (
            "the forge door does not take this agent's FLEETWARDEN_HEARTBEAT_TOKEN" in read.stderr
        )


def kill_agents(root: Path) -> None:
    """Kill what is left of the agents (a test that failed before stopping them)."""
    for pid in processes_where(
        lambda cwd, cmdline: cwd.startswith(str(root)) and b"sleep" in cmdline
    ):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_runs_token_is_refused_at_every_door_once_the_run_ends(
    tmp_path: Path, tokened_upstream: GitUpstream
) -> None:
    """stop and restart end a run: its token is refused by the heartbeat endpoint, the peer
    door, the git door and the forge door; the next run's new token is taken, its pushes
    through its kept checkout's origin too."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors:\n  console: {}\n"
        "defaults:\n  stop_grace_seconds: 1\n"
        "repos:\n"
        f"  app:\n    url: {tokened_upstream.url('app')}\n    token_env: APP_TOKEN\n"
        # A forge in the config mounts the forge door on the heartbeat endpoint.
        "forges:\n  hub: {kind: github, api_url: 'http://127.0.0.1:9', token_env: FORGE_TOKEN,"
        " login: fleetwarden-bot, poll_seconds: 3600}\n"
        "agents:\n"
        "  - name: coder\n    runtime: command\n    repo: app\n"
        f"    argv: [sh, -c, {yaml_str(CODER)}]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWARDEN_")}
    bot = ConsoleBot(
        tmp_path,
        "--config",
        str(config),
        env={**env, "APP_TOKEN": UPSTREAM_TOKEN, "FORGE_TOKEN": "forge-token-x"},
    )
    try:
        bot.command("spawn coder", r"Agent coder started", timeout=120)
        first = token_of(tmp_path, "coder", 1)
        port = port_of(tmp_path)
        assert "PUSH-1=taken" in log_of(tmp_path, "coder")
        taken_everywhere(port, "coder", first)

        bot.command("stop coder", r"Stopped coder", timeout=60)
        refused_everywhere(port, "coder", first)

        bot.command("spawn coder", r"Agent coder started", timeout=120)
        second = token_of(tmp_path, "coder", 2)
        assert second != first
        assert "PUSH-2=taken" in log_of(tmp_path, "coder"), log_of(tmp_path, "coder")
        taken_everywhere(port, "coder", second)
        refused_everywhere(port, "coder", first)

        bot.command("restart coder", r"coder", timeout=120)
        third = token_of(tmp_path, "coder", 3)
        assert third not in (first, second)
        assert "PUSH-3=taken" in log_of(tmp_path, "coder"), log_of(tmp_path, "coder")
        taken_everywhere(port, "coder", third)
        for stale in (first, second):
            refused_everywhere(port, "coder", stale)

        bot.command("stop coder", r"Stopped coder", timeout=60)
        refused_everywhere(port, "coder", third)
        # Revoked, the tokens are still redacted in what the runs printed.
        bot.command("logs coder --lines 200", r"TOKEN-3=\[redacted: heartbeat token\]")
        assert not any(token in bot.stdout for token in (first, second, third))
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        kill_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=10)


def test_a_reattached_run_keeps_its_token_and_runs_over_lose_theirs_at_a_restart(
    tmp_path: Path,
) -> None:
    """Across a restart of Fleetwarden, the token of a tmux agent that goes on is still taken;
    that of an agent stopped before it, and of one whose run ended while Fleetwarden was
    away, is refused."""
    for name, script in (("keeper", "echo TOKEN-1=$FLEETWARDEN_HEARTBEAT_TOKEN; echo READY-1; "
                                    "sleep 600"),
                         ("gone", "echo TOKEN-1=$FLEETWARDEN_HEARTBEAT_TOKEN; echo READY-1; "
                                  "sleep 600"),
                         ("leaver", WAITER)):  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "agent.sh").write_text(script)
    entries = "".join(
        f"  - name: {name}\n    runtime: command\n    backend: tmux\n"
        f"    argv: [sh, agent.sh]\n    workdir: ./{name}\n"
        for name in ("keeper", "gone", "leaver")
    )
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors:\n  console: {}\n"
        "defaults:\n  stop_grace_seconds: 1\n"
        f"agents:\n{entries}"
    )
    socket = tmux_socket_name(tmp_path / "state")
    first = ConsoleBot(tmp_path, "--config", str(config))
    second: ConsoleBot | None = None
    try:
        tokens = {}
        for name in ("keeper", "gone", "leaver"):
            first.command(f"spawn {name}", rf"Agent {name} started", timeout=60)
            tokens[name] = token_of(tmp_path, name, 1)
        port = port_of(tmp_path)
        for name, token in tokens.items():
            taken_everywhere(port, name, token, git=False)
        first.command("stop gone", r"Stopped gone", timeout=60)
        refused_everywhere(port, "gone", tokens["gone"], git=False)
        assert first.close() == 0, first.stderr

        # While Fleetwarden is away, leaver's run ends by itself; keeper's goes on.
        (tmp_path / "leaver" / "leave").write_text("")
        assert wait_until(
            lambda: "leaver" not in tmux(socket, "list-sessions", "-F", "#S").stdout, timeout=30
        )

        second = ConsoleBot(tmp_path, "--config", str(config))
        second.command("ps", r"keeper\b.*running", timeout=60)
        assert port_of(tmp_path) == port
        taken_everywhere(port, "keeper", tokens["keeper"], git=False)
        refused_everywhere(port, "gone", tokens["gone"], git=False)
        refused_everywhere(port, "leaver", tokens["leaver"], git=False)
        saved = json.loads((tmp_path / "state" / "heartbeat.json").read_text())["tokens"]
        assert set(saved) == {"keeper"}

        second.command("stop keeper", r"Stopped keeper", timeout=60)
        refused_everywhere(port, "keeper", tokens["keeper"], git=False)
        assert second.close() == 0, second.stderr
    finally:
        for bot in (first, second):
            if bot is not None and bot.proc.poll() is None:
                bot.kill()
        tmux(socket, "kill-server")
    assert "Traceback" not in first.stdout + first.stderr
    assert second is not None and "Traceback" not in second.stdout + second.stderr


# The first run fails by itself after printing its token; the watchdog's restart goes on.
FAILS_ONCE = """
n=$(( $(ls run-*.txt 2>/dev/null | wc -l) + 1 )); : > run-$n.txt
echo "TOKEN-$n=$FLEETWARDEN_HEARTBEAT_TOKEN"
echo "READY-$n"
if [ "$n" = 1 ]; then exit 3; fi
sleep 600
"""


def test_the_watchdogs_restart_is_a_new_run_with_a_new_token(tmp_path: Path) -> None:
    """A run that fails and is restarted by the watchdog (``restart: on-failure``): the new
    run's token is new and taken, the failed run's refused."""
    (tmp_path / "flaky").mkdir()
    (tmp_path / "flaky" / "agent.sh").write_text(FAILS_ONCE)
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors:\n  console: {}\n"
        "defaults:\n  stop_grace_seconds: 1\n  watchdog_interval_seconds: 5\n"
        "agents:\n"
        "  - name: flaky\n    runtime: command\n    argv: [sh, agent.sh]\n"
        "    workdir: ./flaky\n"
        "    restart: {mode: on-failure, max_restarts: 1, backoff_initial: 0.1, backoff_max: 1}\n"
    )
    bot = ConsoleBot(tmp_path, "--config", str(config))
    try:
        bot.send("spawn flaky")
        bot.expect(r"Agent flaky restarted by the watchdog: restart 1 of 1", timeout=60)
        first, second = token_of(tmp_path, "flaky", 1), token_of(tmp_path, "flaky", 2)
        assert second != first
        port = port_of(tmp_path)
        taken_everywhere(port, "flaky", second, git=False)
        refused_everywhere(port, "flaky", first, git=False)
        bot.command("stop flaky", r"Stopped flaky", timeout=60)
        refused_everywhere(port, "flaky", second, git=False)
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        kill_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr
