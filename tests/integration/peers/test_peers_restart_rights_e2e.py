"""A watchdog restart continues a task handed on only while its sender may still reach the
peer, through the real ``fleetwarden run`` console with ``command`` agents calling the real
``fw-msg``: ``boss`` hands a task to ``worker`` (``restart: on-failure``), a ``roster
reload`` takes worker out of boss's ``talks_to``, and worker's run fails. The watchdog gives
up instead of starting the task again, and says why in chat; with boss's right kept, the
same failure is restarted as before."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.peers.test_peers_rights_e2e import BOSS, STARTUP, WAIT, log_of, stop_agents

pytestmark = pytest.mark.integration

# Prints its prompt; a line "die" ends its run with status 1 (a failure to restart).
WORKER = """\
import os, sys

for line in os.environ.get("FLEETWARDEN_PROMPT", "").splitlines():
    print("prompt:", line, flush=True)
print("WORKER-READY", flush=True)
for line in sys.stdin:
    if line.strip() == "die":
        sys.exit(1)
"""
RESTART = "{mode: on-failure, max_restarts: 3, backoff_initial: 0.1, backoff_max: 1}"


def write_config(root: Path, talks_to: str) -> Path:
    """boss with ``talks_to``; worker restarted by the watchdog when its run fails."""
    for name, script in (("boss", BOSS), ("worker", WORKER)):
        (root / name).mkdir(exist_ok=True)
        (root / name / "agent.py").write_text(script)  # in its workdir: its sandbox sees it
    path = root / "fleetwarden.yaml"
    path.write_text(
        "state_dir: ./state\n"
        "connectors:\n  console: {}\n"
        "defaults:\n  stop_grace_seconds: 1\n  watchdog_interval_seconds: 5\n"
        "agents:\n"
        + "".join(
            f"  - name: {name}\n    runtime: command\n"
            f"    argv: [{sys.executable}, -I, agent.py]\n    workdir: ./{name}\n{extra}"
            for name, extra in (
                ("boss", f"    talks_to: {talks_to}\n"),
                ("worker", f"    restart: {RESTART}\n"),
            )
        )
    )
    return path


def hand_on_and_fail(bot: ConsoleBot, root: Path, reload_to: str | None) -> None:
    """boss hands worker a task (worker starts on it); ``reload_to``: boss's ``talks_to``
    after a reload; then worker's run fails."""
    bot.command("spawn boss", r"Agent boss started", timeout=STARTUP)
    assert wait_until(lambda: "BOSS-READY" in log_of(root, "boss"), WAIT)
    bot.send("send boss task worker fix the login")
    assert wait_until(lambda: "WORKER-READY" in log_of(root, "worker"), WAIT), log_of(root, "boss")
    assert "fix the login" in log_of(root, "worker")
    if reload_to is not None:
        write_config(root, reload_to)
        bot.command("roster reload", r"(?i)reload", timeout=WAIT)
    bot.send("send worker die")


def test_a_restart_of_a_task_handed_on_is_refused_once_its_sender_lost_the_right(
    tmp_path: Path,
) -> None:
    """After a reload takes worker out of boss's ``talks_to``, worker's failed run is not
    restarted on boss's task: the watchdog gives up, saying why in chat."""
    bot = ConsoleBot(tmp_path, "--config", str(write_config(tmp_path, "[worker]")))
    try:
        hand_on_and_fail(bot, tmp_path, "[]")
        bot.expect(
            r"Agent worker keeps failing; not restarting it again: its restart is refused: "
            r"task #1 fix-the-login was handed on by boss, "
            r"and worker is no longer one of boss's peers",
            timeout=WAIT,
        )
        bot.command("ps", r"worker")
        assert log_of(tmp_path, "worker").count("WORKER-READY") == 1
        assert "restarted by the watchdog" not in bot.stdout
        bot.command("stop boss", r"Stopped boss")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        stop_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr


def test_a_restart_of_a_task_handed_on_goes_on_while_its_sender_keeps_the_right(
    tmp_path: Path,
) -> None:
    """With boss's ``talks_to`` unchanged, worker's failed run is restarted as before."""
    bot = ConsoleBot(tmp_path, "--config", str(write_config(tmp_path, "[worker]")))
    try:
        hand_on_and_fail(bot, tmp_path, None)
        bot.expect(r"Agent worker restarted by the watchdog: restart 1 of 3", timeout=WAIT)
        assert wait_until(lambda: log_of(tmp_path, "worker").count("WORKER-READY") == 2, WAIT)
        for name in ("worker", "boss"):
            bot.command(f"stop {name}", rf"Stopped {name}")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        stop_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr
