"""The fleet end to end: the real `fleetwarden run` with tmux agents, restarts of
Fleetwarden itself, drift, and the watchdog's stall → restart → give-up ladder."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app.assembly import tmux_socket_name
from tests.integration.console_bot import ConsoleBot, pid_alive, wait_until

pytestmark = pytest.mark.integration

TMUX_ROSTER = """\
state_dir: ./state
connectors:
  console: {}
agents:
  - name: term
    runtime: stub
    backend: tmux
    prompt: count to 2
"""


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=10)


def sessions(socket: str) -> list[str]:
    listed = tmux(socket, "list-sessions", "-F", "#{session_name}")
    return listed.stdout.split() if listed.returncode == 0 else []


@pytest.fixture
def tmux_deployment(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(TMUX_ROSTER)
    socket = tmux_socket_name(tmp_path / "state")
    yield config, socket
    tmux(socket, "kill-server")


def test_a_tmux_agent_survives_a_fleetwarden_crash_and_is_not_duplicated(
    tmux_deployment: tuple[Path, str],
) -> None:
    """tmux agent: spawn, type to it, watch; kill -9 Fleetwarden; the new one reattaches
    the same session and pid, spawn does not start a second, stop ends it."""
    config, socket = tmux_deployment
    first = ConsoleBot(config.parent, "--config", str(config))
    pid = int(first.command("spawn term", r"Agent term started \(stub\), pid (\d+)").group(1))
    assert sessions(socket) == ["term"]
    first.command("send term hello there", r"stub: received: hello there")
    first.command("watch term", r"stub: 2")
    first.kill()
    assert pid_alive(pid) and sessions(socket) == ["term"]

    second = ConsoleBot(config.parent, "--config", str(config))
    second.command("ps", rf"term\s+stub\s+running\s+{pid}\s")
    second.command("spawn term", rf"already running, pid {pid}")
    assert sessions(socket) == ["term"]
    second.command("send term still with us?", r"stub: received: still with us\?")
    second.command("stop term", r"Stopped term")
    assert wait_until(lambda: not pid_alive(pid) and sessions(socket) == [])
    assert second.close() == 0


def test_a_session_nobody_knows_is_reported_as_drift_and_left_alone(
    tmux_deployment: tuple[Path, str],
) -> None:
    """A tmux session on Fleetwarden's socket that no agent accounts for shows in ps."""
    config, socket = tmux_deployment
    bot = ConsoleBot(config.parent, "--config", str(config))
    bot.command("spawn term", r"Agent term started")
    made = tmux(socket, "new-session", "-d", "-s", "stray", "--", "sleep", "600")
    assert made.returncode == 0, made.stderr
    bot.command("ps", r"Drift: stray")
    assert "stray" in sessions(socket)
    bot.command("stop term", r"Stopped term")
    assert bot.close() == 0
    assert "stray" in sessions(socket)


WATCHDOG_ROSTER = """\
state_dir: ./state
connectors:
  console: {}
defaults:
  heartbeat_timeout_seconds: 2
  watchdog_interval_seconds: 5
agents:
  - name: hb
    runtime: stub
    env: {FLEETWARDEN_HEARTBEAT_INTERVAL: "0.2"}
    restart: {mode: on-failure, max_restarts: 1, backoff_initial: 0.1, backoff_max: 1}
"""


def test_a_stalled_agent_is_restarted_then_given_up_on(tmp_path: Path) -> None:
    """No heartbeat for longer than its timeout → stalled and restarted with backoff;
    at max_restarts the watchdog stops trying and says so once."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(WATCHDOG_ROSTER)
    bot = ConsoleBot(tmp_path, "--config", str(config))
    first = int(bot.command("spawn hb", r"Agent hb started \(stub\), pid (\d+)").group(1))
    bot.send("send hb hang")
    bot.expect(r"Agent hb stalled", timeout=30)
    restarted = bot.expect(r"Agent hb restarted by the watchdog: restart 1 of 1", timeout=30)
    assert restarted
    assert wait_until(lambda: not pid_alive(first))
    second = int(bot.command("ps", r"hb\s+stub\s+running\s+(\d+)\s").group(1))
    assert second != first
    bot.send("send hb hang")
    bot.expect(r"Agent hb keeps failing; not restarting it again", timeout=40)
    bot.command("stop hb --force", r"Stopped hb|hb is not running")
    assert bot.close() == 0
    assert bot.stdout.count("keeps failing") == 1


AUTOSTART_ROSTER = """\
state_dir: ./state
connectors:
  console: {}
agents:
  - name: early
    runtime: stub
    autostart: true
"""


def test_autostart_agents_start_with_fleetwarden_once(tmp_path: Path) -> None:
    """An autostart agent runs without a spawn, and a restarted Fleetwarden keeps that one."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(AUTOSTART_ROSTER)
    first = ConsoleBot(tmp_path, "--config", str(config))
    pid = int(first.command("ps", r"early\s+stub\s+running\s+(\d+)\s").group(1))
    assert first.close() == 0
    second = ConsoleBot(tmp_path, "--config", str(config))
    second.command("ps", rf"early\s+stub\s+running\s+{pid}\s")
    second.command("stop early", r"Stopped early")
    assert second.close() == 0


def test_roster_reload_applies_a_valid_file_and_refuses_a_broken_one(tmp_path: Path) -> None:
    """`roster reload` adds new agents (starting autostart ones), leaves running agents
    alone, and on a broken file changes nothing and says what is wrong."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(AUTOSTART_ROSTER)
    bot = ConsoleBot(tmp_path, "--config", str(config))
    pid = int(bot.command("ps", r"early\s+stub\s+running\s+(\d+)\s").group(1))
    config.write_text(
        AUTOSTART_ROSTER.replace("runtime: stub\n", "runtime: stub\n    model: m2\n", 1)
        + "  - name: late\n    runtime: stub\n    autostart: true\n"
    )
    bot.command("roster reload", r"added: late; changed: early; started: late\.")
    bot.command("ps", rf"early\s+stub\s+running\s+{pid}\s")
    bot.command("roster", r"late\s+stub")
    config.write_text(AUTOSTART_ROSTER + "  - name: Bad_Name\n    runtime: stub\n")
    bot.command("roster reload", r"the roster was not reloaded; nothing changed: .*Bad_Name")
    bot.command("roster", r"late\s+stub")
    for name in ("early", "late"):
        bot.command(f"stop {name}", rf"Stopped {name}")
    assert bot.close() == 0


TIMEOUT_ROSTER = """\
state_dir: ./state
connectors:
  console: {}
defaults:
  watchdog_interval_seconds: 5
agents:
  - name: brief
    runtime: stub
    timeout: 1
"""


def test_a_run_past_its_timeout_is_killed_and_recorded_as_failed(tmp_path: Path) -> None:
    """The watchdog ends a run that outlives its wall-clock limit and says so."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(TIMEOUT_ROSTER)
    bot = ConsoleBot(tmp_path, "--config", str(config))
    pid = int(bot.command("spawn brief", r"Agent brief started \(stub\), pid (\d+)").group(1))
    bot.expect(r"brief killed by timeout after \S+: .*timeout", timeout=30)
    assert wait_until(lambda: not pid_alive(pid))
    bot.command("ps", r"brief\s+stub\s+failed")
    assert bot.close() == 0
