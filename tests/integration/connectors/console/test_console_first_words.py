"""A new user's first words on the Quick start's console, through the real `fleetwarden
run` on its embedded default: a mistyped `help` topic, `quit` and `status` are each
answered with the word meant in the console's own form; `send` from a second shell says
where the agent's output shows; `run.sh -c FILE` names `--config`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env, wait_until
from tests.integration.operations.test_quick_start import RUN_SH, made_venv

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]


def test_mistyped_words_are_answered_with_the_consoles_own_form(tmp_path: Path) -> None:
    """`help spwan` points to `help` (no `!`) and `spawn`; `quti` to `quit` without
    leaving; `status` to `ps`."""
    with ConsoleBot(tmp_path) as bot:
        said = bot.command("help spwan", r"help: unknown command .*").group(0)
        assert "did you mean 'spawn'? Try help" in said and "!help" not in said
        bot.command("quti", r"did you mean 'quit'\?")
        bot.command("status", r"unknown command 'status' — did you mean 'ps'\?")
        bot.command("ps", r"No agents yet")
        assert bot.quit() == 0


def test_send_from_a_shell_says_where_the_output_shows(tmp_path: Path) -> None:
    """A shell's `send` is told the agent's output shows in chat, not that it follows."""
    with ConsoleBot(tmp_path) as bot:
        assert wait_until((tmp_path / ".fleetwarden" / "control.sock").exists, 60), bot.stderr
        bot.command('spawn demo --prompt "count to 3"', r"waiting for input", 60)
        done = subprocess.run(
            [str(FLEETWARDEN), "send", "demo", "hello"],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "what it does shows in chat" in done.stdout
        assert "follows" not in done.stdout
        bot.command("stop demo", r"Stopped demo")
        assert bot.quit() == 0


def test_run_sh_with_dash_c_names_the_config_option(tmp_path: Path) -> None:
    """`bash run.sh -c FILE` is refused naming `--config`, starting nothing."""
    env = clean_env(FLEETWARDEN_VENV=str(made_venv(tmp_path)))
    done = subprocess.run(
        ["bash", str(RUN_SH), "-c", "fleetwarden.yaml"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "-c fleetwarden.yaml — did you mean --config?" in done.stderr
    assert not (tmp_path / ".fleetwarden").exists()


def test_stop_says_its_task_goes_back_to_todo(tmp_path: Path) -> None:
    """`stop demo` while its run works on task #1 says the task is back to todo and how to
    run it again; `tasks` then shows it there."""
    with ConsoleBot(tmp_path) as bot:
        bot.command('spawn demo --prompt "count to 3"', r"waiting for input", 60)
        bot.command("tasks", r"#1 count-to-3 · working")
        bot.command(
            "stop demo",
            r"Stopped demo \(.*\)\. Task #1 back to todo: task start 1 runs it again\.",
        )
        bot.command("tasks", r"#1 count-to-3 · todo")
        assert bot.quit() == 0


def test_logs_shows_as_many_lines_as_it_counts(tmp_path: Path) -> None:
    """`logs demo` says N entries and shows N lines under its count: no blank quoted line
    between the agent's first line and its output."""
    with ConsoleBot(tmp_path) as bot:
        bot.command('spawn demo --prompt "count to 5"', r"waiting for input", 60)
        said = bot.command("logs demo", r"What demo did lately \((\d+) entries", 30)
        bot.expect(r"stub: waiting for input", 30)
        shown = bot.output_since_command.split("entries", 1)[1].splitlines()[1:]
        quoted = [line for line in shown if line.startswith(">")]
        assert len(quoted) == int(said.group(1)), shown
        assert ">" not in [line.strip() for line in quoted], shown
        assert bot.quit() == 0
