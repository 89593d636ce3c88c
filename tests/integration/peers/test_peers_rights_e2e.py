"""A right to reach a peer is checked when it is used, through the real ``fleetwarden run``
console with ``command`` agents calling the real ``fw-msg``: a task ``boss`` hands to a
busy ``worker`` waits for worker's run to end, and a message to ``idle`` (``wake: wait``)
waits for it to run — then a ``roster reload`` takes worker and idle out of boss's
``talks_to``, or takes boss out of the roster, or Fleetwarden restarts with boss's
``talks_to`` emptied. What waited is refused, recorded with why, told in chat, and never
started or delivered; the refused task stays in the register for an operator. A peer's
queue counts the tasks that wait for it, and the messages that wait for a ``wake: start``
peer held by a full cap."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.integration.console_bot import ConsoleBot, processes_where, wait_until

pytestmark = pytest.mark.integration

BOSS = """\
import subprocess, sys

print("BOSS-READY", flush=True)
for line in sys.stdin:
    verb, peer, text = (line.strip().split(" ", 2) + ["", "", ""])[:3]
    if verb not in ("task", "send"):
        continue
    done = subprocess.run(
        ["fw-msg", verb, peer, text], capture_output=True, text=True, timeout=60
    )
    said = (done.stdout + done.stderr).strip().replace("\\n", " / ")
    print(f"FW {verb} {peer} {text} exit {done.returncode}: {said}", flush=True)
"""
PEER = """\
import os, sys

for line in os.environ.get("FLEETWARDEN_PROMPT", "").splitlines():
    print("prompt:", line, flush=True)
print("PEER-READY", flush=True)
for line in sys.stdin:
    print("got:", line.rstrip("\\n"), flush=True)
"""
STARTUP = 60.0  # seconds for the first answer: the whole app starts before it, on a busy host
WAIT = 60.0  # seconds for an agent's or the ledger's news, on a busy host
PEERS = "[worker, idle, sleeper]"
HEAD = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
  message_queue: 2
limits:
  max_running: {max_running}
agents:
"""


def agent(name: str, extra: str = "") -> str:
    return (
        f"  - name: {name}\n"
        "    runtime: command\n"
        f"    argv: [{sys.executable}, -I, agent.py]\n"
        f"    workdir: ./{name}\n"
        f"{extra}"
    )


def write_config(
    root: Path, *, talks_to: str = PEERS, boss: bool = True, max_running: int = 4
) -> Path:
    """The config: ``boss`` (when ``boss``) with ``talks_to``; its peers, ``worker`` and
    ``idle`` waiting to be run, ``sleeper`` started by a message."""
    for name, script in (("boss", BOSS), ("worker", PEER), ("idle", PEER), ("sleeper", PEER)):
        (root / name).mkdir(exist_ok=True)
        (root / name / "agent.py").write_text(script)  # in its workdir: its sandbox sees it
    entries = (agent("boss", f"    talks_to: {talks_to}\n") if boss else "") + "".join(
        (agent("worker"), agent("idle"), agent("sleeper", "    wake: start\n"))
    )
    path = root / "fleetwarden.yaml"
    path.write_text(HEAD.format(max_running=max_running) + entries)
    return path


def log_of(root: Path, name: str) -> str:
    path = root / "state" / "agents" / name / "output.log"
    return path.read_text(errors="replace") if path.exists() else ""


def messages(root: Path) -> list[tuple[str, str, str, str, str]]:
    """Each message as (receiver, kind, text, state, why), oldest first."""
    with sqlite3.connect(root / "state" / "ledger.db") as db:
        rows = db.execute("SELECT receiver, kind, text, state, why FROM messages ORDER BY id")
        return [tuple(str(v) for v in row) for row in rows]  # type: ignore[misc]


def settled(root: Path, count: int) -> bool:
    """Whether the first ``count`` messages are recorded and none of them waits still."""
    rows = messages(root)
    return len(rows) >= count and all(row[3] != "queued" for row in rows[:count])


def task_why(root: Path, title: str) -> tuple[str, str]:
    with sqlite3.connect(root / "state" / "ledger.db") as db:
        row = db.execute("SELECT state, why FROM tasks WHERE title = ?", (title,)).fetchone()
    return (str(row[0]), str(row[1])) if row else ("", "")


def said_by_boss(root: Path, count: int) -> list[str]:
    """boss's ``fw-msg`` answers, once it has given ``count`` of them."""
    assert wait_until(lambda: log_of(root, "boss").count("FW ") >= count, WAIT), log_of(
        root, "boss"
    )
    return [line for line in log_of(root, "boss").splitlines() if line.startswith("FW ")]


def stop_agents(root: Path) -> None:
    """Kill what is left of the agents (a test that failed before stopping them)."""
    for pid in processes_where(
        lambda cwd, cmdline: cwd.startswith(str(root)) and b"agent.py" in cmdline
    ):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start_busy_worker_and_boss(bot: ConsoleBot, root: Path) -> None:
    bot.command("spawn worker", r"Agent worker started", timeout=STARTUP)
    assert wait_until(lambda: "PEER-READY" in log_of(root, "worker"), WAIT)
    bot.command("spawn boss", r"Agent boss started", timeout=WAIT)
    assert wait_until(lambda: "BOSS-READY" in log_of(root, "boss"), WAIT)


def hand_on(bot: ConsoleBot, root: Path, title: str, count: int) -> None:
    """boss hands ``title`` to worker, which runs: the task waits for its run to end."""
    bot.send(f"send boss task worker {title}")
    said = said_by_boss(root, count)[-1]
    assert "exit 0" in said and "worker runs now, so it starts once that run ends" in said


def test_a_reload_that_takes_a_peer_away_refuses_the_task_and_message_waiting(
    tmp_path: Path,
) -> None:
    """A task handed on and a message, both waiting when a reload takes their receiver out
    of the sender's ``talks_to``, are refused with why (ledger, chat, the task's line), and
    neither starts nor reaches the peer afterwards."""
    config = write_config(tmp_path)
    bot = ConsoleBot(tmp_path, "--config", str(config))
    try:
        start_busy_worker_and_boss(bot, tmp_path)
        hand_on(bot, tmp_path, "fix the login", 1)
        bot.send("send boss send idle the login needs you")
        assert "exit 0" in said_by_boss(tmp_path, 2)[-1]

        write_config(tmp_path, talks_to="[]")
        bot.command("roster reload", r"(?i)reload", timeout=WAIT)
        bot.command("stop worker", r"Stopped worker")
        assert wait_until(lambda: settled(tmp_path, 2), WAIT), messages(tmp_path)
        task, message = messages(tmp_path)[:2]
        assert task[1:2] + task[3:] == (
            "task",
            "refused",
            "not started: worker is no longer one of boss's peers",
        )
        assert message[3:] == ("refused", "not delivered: idle is no longer one of boss's peers")
        told = "refused: not started: worker is no longer one of"
        assert wait_until(lambda: told in bot.stdout, WAIT)
        state, why = task_why(tmp_path, "fix the login")
        assert state == "todo" and "not started: worker is no longer one of boss's peers" in why

        bot.command("spawn idle", r"Agent idle started")
        assert wait_until(lambda: "PEER-READY" in log_of(tmp_path, "idle"), WAIT)
        bot.command("msgs", r"Messages between agents")
        assert "the login needs you" not in log_of(tmp_path, "idle")
        assert "task 1 from boss" not in log_of(tmp_path, "worker")
        assert messages(tmp_path)[1][3] == "refused"
        for name in ("boss", "idle"):
            bot.command(f"stop {name}", rf"Stopped {name}")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        stop_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr


def test_a_reload_that_takes_the_sender_out_of_the_roster_refuses_what_it_sends(
    tmp_path: Path,
) -> None:
    """A sender a reload took out of the roster runs on, but its waiting task is refused
    when its peer's run ends, and a message it sends after is refused: its right went with
    its entry."""
    config = write_config(tmp_path)
    bot = ConsoleBot(tmp_path, "--config", str(config))
    try:
        start_busy_worker_and_boss(bot, tmp_path)
        hand_on(bot, tmp_path, "fix the login", 1)

        write_config(tmp_path, boss=False)
        bot.command("roster reload", r"(?i)reload", timeout=WAIT)
        bot.send("send boss send worker are you there")
        said = said_by_boss(tmp_path, 2)[-1]
        assert "exit 1" in said and "you are not in the roster now" in said, said
        bot.command("stop worker", r"Stopped worker")
        assert wait_until(lambda: settled(tmp_path, 1), WAIT), messages(tmp_path)
        assert messages(tmp_path)[0][3:] == (
            "refused",
            "not started: boss is no longer in the roster",
        )
        assert "are you there" not in log_of(tmp_path, "worker")
        assert "task 1 from boss" not in log_of(tmp_path, "worker")
        assert wait_until(lambda: "refused: not started: boss is no longer in" in bot.stdout, WAIT)
        bot.command("stop boss", r"Stopped boss")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        stop_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr


def test_a_restart_with_talks_to_emptied_refuses_the_task_handed_on_before(
    tmp_path: Path,
) -> None:
    """Fleetwarden restarted with the sender's ``talks_to`` emptied: the task it handed on
    before, still waiting, is refused — never started at the start nor when the peer's run
    ends."""
    config = write_config(tmp_path)
    bot = ConsoleBot(tmp_path, "--config", str(config))
    again: ConsoleBot | None = None
    try:
        start_busy_worker_and_boss(bot, tmp_path)
        hand_on(bot, tmp_path, "fix the login", 1)
        assert bot.close() == 0, bot.stderr  # the agents run on while it is away

        write_config(tmp_path, talks_to="[]")
        again = ConsoleBot(tmp_path, "--config", str(config))
        again.command("stop worker", r"Stopped worker|not running", timeout=STARTUP)
        assert wait_until(lambda: settled(tmp_path, 1), WAIT), messages(tmp_path)
        assert messages(tmp_path)[0][3:] == (
            "refused",
            "not started: worker is no longer one of boss's peers",
        )
        assert "task 1 from boss" not in log_of(tmp_path, "worker")
        assert wait_until(lambda: "refused: not started: worker is no longer" in again.stdout, WAIT)
        again.command("stop boss", r"Stopped boss|not running")
        assert again.close() == 0, again.stderr
    finally:
        for running in (bot, again):
            if running is not None and running.proc.poll() is None:
                running.kill()
        stop_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr + (again.stderr if again else "")


def test_a_peers_queue_counts_the_tasks_and_the_wakes_waiting_for_it(tmp_path: Path) -> None:
    """With ``message_queue: 2``, two tasks waiting for a busy peer fill its queue (the
    third is refused in the queue's words), as two messages waiting for a ``wake: start``
    peer a full cap holds do."""
    config = write_config(tmp_path, max_running=2)
    bot = ConsoleBot(tmp_path, "--config", str(config))
    try:
        start_busy_worker_and_boss(bot, tmp_path)
        hand_on(bot, tmp_path, "fix the login", 1)
        hand_on(bot, tmp_path, "fix the logout", 2)
        bot.send("send boss task worker fix the signup")
        said = said_by_boss(tmp_path, 3)[-1]
        assert "exit 1" in said and "worker has 2 messages waiting" in said, said
        for n in (1, 2, 3):
            bot.send(f"send boss send sleeper wake up {n}")
            said_by_boss(tmp_path, 3 + n)
        answers = said_by_boss(tmp_path, 6)
        assert all("exit 0" in line for line in answers[3:5]), answers
        assert "exit 1" in answers[5] and "sleeper has 2 messages waiting" in answers[5]
        assert [row[3] for row in messages(tmp_path)] == [
            "queued",
            "queued",
            "refused",
            "queued",
            "queued",
            "refused",
        ]
        assert task_why(tmp_path, "fix the signup") == ("", "")  # never made
        for name in ("boss", "worker"):
            bot.command(f"stop {name}", rf"Stopped {name}")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        stop_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr
