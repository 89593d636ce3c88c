"""The real ``fleetwarden run`` process, driven on stdin as an operator would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.console_bot import (
    FLEETWARDEN,
    ConsoleBot,
    clean_env,
    host_pid,
    pid_alive,
    stub_processes_in,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def console_run_bot(tmp_path: Path):  # type: ignore[no-untyped-def]
    running = ConsoleBot(tmp_path)
    yield running
    if running.proc.poll() is None:
        running.send("ps")
        for name in ("demo", "other"):
            running.send(f"stop {name} --force")
        running.close()


def test_done_when_script_in_an_empty_directory(tmp_path: Path) -> None:
    """The README's demo, typed line by line as a person would (each after the answer
    before it): help, spawn, ps, logs, the echo and the stop; exits 0."""
    console_run_bot = ConsoleBot(tmp_path)
    try:
        console_run_bot.command("help", r"spawn NAME")  # the help table
        console_run_bot.command(
            'spawn demo --prompt "count to 3"', r"Agent demo started \(stub\), pid"
        )
        console_run_bot.expect(r"stub: 3")
        console_run_bot.command("ps", r"demo.*running")
        console_run_bot.command("logs demo", r"stub: working on: count to 3")
        console_run_bot.command("send demo hello", r"stub: received: hello")
        console_run_bot.command("stop demo", r"Stopped demo")
        assert console_run_bot.close() == 0, console_run_bot.stderr
    finally:
        if console_run_bot.proc.poll() is None:
            console_run_bot.kill()
    assert "Traceback" not in console_run_bot.stdout + console_run_bot.stderr
    assert console_run_bot.stderr == ""
    assert console_run_bot.stdout.count("stub: received SIGTERM") == 1  # the stop reached it once
    assert (tmp_path / ".fleetwarden" / "ledger.db").exists()


def test_eof_exits_zero_without_output_on_stderr(console_run_bot: ConsoleBot) -> None:
    """End of input shuts down cleanly with status 0 and nothing on stderr."""
    console_run_bot.command("whoami", r"You are console on console, role admin")
    assert console_run_bot.close() == 0
    assert console_run_bot.stderr == ""


def test_quit_ends_the_session(tmp_path: Path) -> None:
    """`quit` stops the bot with status 0 even with input still open."""
    running = ConsoleBot(tmp_path)
    running.command("ps", r"No agents yet")
    running.send("quit")
    assert running.wait() == 0


def test_spawn_is_idempotent(console_run_bot: ConsoleBot) -> None:
    """Spawning a running agent reports it and never starts a second process."""
    first = console_run_bot.command(
        "spawn demo --prompt 'count to 2'", r"Agent demo started \(stub\), pid (\d+)"
    )
    second = console_run_bot.command("spawn demo", r"demo is already running, pid (\d+)")
    assert first.group(1) == second.group(1)
    console_run_bot.command("ps", r"1 of 1 agent running")
    assert len(re.findall(r"^demo\s", console_run_bot.output_since_command, re.M)) == 1
    workdir = console_run_bot.cwd / ".fleetwarden" / "agents" / "demo" / "work"
    assert len(stub_processes_in(workdir)) == 1


def test_a_name_close_to_a_known_one_starts_nothing_unless_new(console_run_bot: ConsoleBot) -> None:
    """`spawn dmo` beside `demo` is a typo: refused naming `demo`, no agent started and no
    task opened; `spawn dmo --new`, and a name close to none, start agents of their own."""
    console_run_bot.command("spawn demo --prompt 'count to 2'", r"Agent demo started \(stub\)")
    said = r"not started: no agent is called 'dmo' — did you mean 'demo'\? Nothing was started"
    console_run_bot.command("spawn dmo --prompt 'add a README'", said)
    console_run_bot.command("ps", r"1 of 1 agent running")
    assert not re.search(r"^dmo\s", console_run_bot.output_since_command, re.M)
    console_run_bot.command("tasks", r"count-to-2")
    assert "add-a-readme" not in console_run_bot.output_since_command
    console_run_bot.command("spawn brandnew", r"Agent brandnew started \(stub\)")
    console_run_bot.command("spawn dmo --new", r"Agent dmo started \(stub\)")
    for name in ("brandnew", "dmo"):
        console_run_bot.command(f"stop {name}", rf"Stopped {name}")


def test_a_task_given_a_name_close_to_a_known_one_is_left_unchanged(
    console_run_bot: ConsoleBot,
) -> None:
    """`task new --agent dmo` and `task start N --agent dmo` beside `demo` are refused
    naming `demo` and the command that works; no task is made, and the task is not
    rewritten to the typo."""
    console_run_bot.command("spawn demo", r"Agent demo started \(stub\)")
    console_run_bot.command("stop demo", r"Stopped demo")
    console_run_bot.command(
        'task new "fix it" --agent dmo',
        r"no agent is called 'dmo' — did you mean 'demo'\? No task was made: "
        r'`?task new "fix it" --agent demo',
    )
    console_run_bot.command('task new "fix it" --agent demo', r"Task #(\d+)")
    number = console_run_bot.command("tasks", r"#(\d+) fix-it").group(1)
    console_run_bot.command(
        f"task start {number} --agent dmo",
        rf"did you mean 'demo'\? Nothing was started and task #{number} is unchanged: "
        rf"`?task start {number} --agent demo",
    )
    console_run_bot.command(f"task {number}", r"demo")
    assert "dmo" not in console_run_bot.output_since_command


def test_send_echo_and_logs(console_run_bot: ConsoleBot) -> None:
    """`send` delivers a line to the agent and shows what it wrote back; `logs` tails it."""
    console_run_bot.command("spawn demo", r"Agent demo started")
    console_run_bot.command("send demo it's a fine day", r"stub: received: it's a fine day")
    console_run_bot.command("logs demo --lines 2", r"stub: received: it's a fine day")


def test_restart_gives_a_new_process(console_run_bot: ConsoleBot) -> None:
    """`restart` stops the agent and launches it again with a new pid."""
    first = int(console_run_bot.command("spawn demo", r"pid (\d+)").group(1))
    second = int(console_run_bot.command("restart demo", r"Restarted demo, now pid (\d+)").group(1))
    assert first != second
    assert wait_until(lambda: not pid_alive(first))


def test_stop_kills_the_whole_process_group(console_run_bot: ConsoleBot) -> None:
    """`stop` ends the agent and the child it forked, not just the agent."""
    agent = int(console_run_bot.command("spawn demo", r"pid (\d+)").group(1))
    forked = int(console_run_bot.command("send demo fork", r"stub: forked child (\d+)").group(1))
    child = host_pid(agent, forked)  # the stub names it as its sandbox numbers it
    assert pid_alive(child)
    console_run_bot.command("stop demo", r"Stopped demo")
    assert wait_until(lambda: not pid_alive(child) and not pid_alive(agent))
    console_run_bot.command("ps", r"stopped")


def test_an_agent_that_ends_by_itself_is_reported(console_run_bot: ConsoleBot) -> None:
    """An agent exiting on its own is announced and shown as failed with its status."""
    console_run_bot.command("spawn demo", r"Agent demo started")
    console_run_bot.send("send demo fail 3")
    console_run_bot.expect(r"demo failed after \S+: exited with status 3")
    console_run_bot.command("ps", r"failed \(3\)")
    console_run_bot.command("send demo hi", r"demo is failed, not running — spawn it first")


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("spawn", r"spawn: missing NAME .*usage: spawn NAME"),
        ("spawn Demo_1", r"invalid agent name 'Demo_1'"),
        (
            "spawn demo --runtime nope",
            r"unknown runtime 'nope'; known runtimes: claude, codex, command, opencode, pi, stub",
        ),
        ("spawn demo --workdir /does/not/exist", r"is not an existing directory"),
        ('spawn demo --prompt "unterminated', r"unterminated \" quote"),
        ("logs ghost", r"no agent is called 'ghost'"),
        ("stpo demo", r"unknown command 'stpo' — did you mean 'stop'\?"),
        ("logs demo --lines lots", r"--lines expects a whole number"),
    ],
)
def test_bad_input_gets_a_one_line_reply_and_launches_nothing(
    console_run_bot: ConsoleBot, line: str, reply: str
) -> None:
    """Bad commands are answered with what was wrong and how to fix it; nothing starts."""
    console_run_bot.command(line, reply)
    console_run_bot.command("ps", r"No agents yet")


def test_restart_of_fleetwarden_reattaches_running_agents(tmp_path: Path) -> None:
    """After kill -9 of Fleetwarden, a new one reattaches the same agent, no duplicate."""
    first = ConsoleBot(tmp_path)
    pid = int(first.command("spawn demo", r"pid (\d+)").group(1))
    first.kill()
    assert pid_alive(pid)
    second = ConsoleBot(tmp_path)
    second.command("ps", rf"demo\s+stub\s+running\s+{pid}\s")
    again = second.command("spawn demo", r"already running, pid (\d+)")
    assert int(again.group(1)) == pid
    second.command("send demo still there?", r"stub: received: still there\?")
    second.command("stop demo", r"Stopped demo")
    assert wait_until(lambda: not pid_alive(pid))
    assert second.close() == 0


def test_agent_that_died_while_fleetwarden_was_down_is_recorded(tmp_path: Path) -> None:
    """An agent killed while Fleetwarden was down is shown as ended on the next start."""
    first = ConsoleBot(tmp_path)
    pid = int(first.command("spawn demo", r"pid (\d+)").group(1))
    first.kill()
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not pid_alive(pid))
    second = ConsoleBot(tmp_path)
    second.command("ps", r"demo\s+stub\s+exited \(0\)\s")
    assert second.close() == 0


def test_second_instance_on_the_same_state_dir_is_refused(
    console_run_bot: ConsoleBot, tmp_path: Path
) -> None:
    """A second `fleetwarden run` on a state dir in use exits 3 with a clear message."""
    console_run_bot.command("ps", r"No agents yet")
    result = subprocess.run(
        [str(FLEETWARDEN), "run"],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert "already running on state dir" in result.stderr.decode()


def test_bad_config_exits_2_before_anything_starts(tmp_path: Path) -> None:
    """A config error names file, line and key, exits 2, and creates no state."""
    config = tmp_path / "fleet.yaml"
    config.write_text("state_dir: ./state\noperators:\n  - id: alice\n    role: root\n")
    result = subprocess.run(
        [str(FLEETWARDEN), "run", "--config", str(config)],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "fleet.yaml:4" in err and "operators[0].role" in err
    assert not (tmp_path / "state").exists()


def test_viewer_may_look_but_not_control(tmp_path: Path) -> None:
    """A console user configured as viewer can run ps but is refused spawn."""
    config = tmp_path / "fleet.yaml"
    config.write_text("connectors:\n  console:\n    role: viewer\n")
    running = ConsoleBot(tmp_path, "--config", str(config))
    running.command("spawn demo", r"needs the operator role; you are a viewer")
    running.command("ps", r"No agents yet")
    assert running.close() == 0


def test_watch_follow_posts_the_screen_again_when_it_changes(console_run_bot: ConsoleBot) -> None:
    """`watch --follow` shows the screen now, then again after it changed."""
    console_run_bot.command("spawn demo", r"Agent demo started")
    console_run_bot.command("watch demo --follow", r"demo lately:")
    console_run_bot.command("send demo look at me", r"stub: received: look at me")
    console_run_bot.expect(r"demo lately:[\s\S]*stub: received: look at me", timeout=30)
