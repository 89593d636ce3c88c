"""The work register through the real ``fleetwarden run`` console with the stub runtime: a
mission, two tasks (the second after the first), the second's start held, the first's run
ending — and the second starting by itself, its answer in the console; the list, a task's
story and the mission saying the states as they are. A task started beyond a concurrency
cap waits in the spawn queue as a ``spawn`` does, and its run, once started, is the task's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.console_bot import ConsoleBot

pytestmark = pytest.mark.integration


def test_a_task_after_another_starts_by_itself_once_that_is_done(tmp_path: Path) -> None:
    bot = ConsoleBot(tmp_path)
    try:
        bot.command("mission new ship Ship the thing", r"Mission ship made: Ship the thing")
        bot.command(
            "task new --agent first --mission ship count to 2",
            r"Task #1 count-to-2 made: no projection yet",
        )
        bot.command(
            "task new --agent second --mission ship --after 1 count to 3",
            r"Task #2 count-to-3 made",
        )
        bot.command(
            "task start 2",
            r"Task #2 count-to-3 waits for #1 count-to-2 \(todo\): it starts here once",
        )
        bot.command("tasks", r"#2 count-to-3 · queued · second")
        bot.command("task start 1", r"Agent first started \(stub\)")
        bot.expect(r"Task #1 count-to-2 · no projection yet")
        bot.expect(r"stub: 2")
        bot.send("send first exit")
        bot.expect(r"What task #2 waited for is done; started now:", timeout=30)
        bot.expect(r"Agent second started \(stub\)")
        bot.command("tasks", r"#2 count-to-3 · working · second")
        assert "#1 count-to-2 · done · first" in bot.output_since_command
        story = bot.command("task 1", r"Task #1 count-to-2\W* · done")
        assert story is not None
        bot.expect(r"- run \d+ · ")
        bot.command("task 2", r"Waits for: #1 count-to-2 \(done\)")
        bot.command("mission ship", r"1 of 2 done")
        bot.expect(r"Tasks: 1 working, 1 done")
        bot.command("stop second", r"Stopped second")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    assert "Traceback" not in bot.stdout + bot.stderr


def test_a_task_beyond_the_cap_waits_in_the_spawn_queue_and_starts_as_its_task(
    tmp_path: Path,
) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text("connectors:\n  console: {}\nlimits:\n  max_running: 1\n")
    bot = ConsoleBot(tmp_path, "--config", str(config))
    try:
        bot.command("task new --agent first count to 2", r"Task #1 count-to-2 made")
        bot.command("task new --agent second count to 3", r"Task #2 count-to-3 made")
        bot.command("task start 1", r"Agent first started \(stub\)")
        bot.expect(r"stub: 2")
        bot.command("task start 2", r"Not started now: global max_running 1 reached")
        bot.expect(r"Task #2 count-to-3 ·")
        bot.command("tasks", r"#2 count-to-3 · queued · second")
        bot.send("send first exit")
        bot.expect(r"Queued launch #1 of \*?\*?second", timeout=30)
        bot.expect(r"Agent second started \(stub\)")
        bot.command("task 2", r"Task #2 count-to-3\W* · working")
        bot.expect(r"- run \d+ · ")
        bot.command("task 1", r"Task #1 count-to-2\W* · done")
        bot.command("stop second", r"Stopped second")
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    assert "Traceback" not in bot.stdout + bot.stderr
