"""Ctrl-C, SIGTERM and Ctrl-D end the real ``fleetwarden run`` at a real terminal (tmux)
cleanly: exit status 0, nothing but its own words printed, no process left, and the
terminal's settings as they were."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.connectors.console.console_stops import (
    ROUNDS,
    bad_end,
    end_agents,
    fleetwardens_in,
)
from tests.integration.connectors.console.console_terminal import Terminal
from tests.integration.console_bot import pid_alive, stub_processes_in, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _tmux() -> None:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed; run `bash tests/run.sh`, which installs it")


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    """Every terminal a test opens, closed (and its process killed) however it ends."""
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def _ended_cleanly(terminal: Terminal, cwd: Path, what: str) -> None:
    status = terminal.exit_status()
    shown = terminal.history()
    assert status == 0, f"{what}: exit status {status}\n{shown}"
    assert bad_end(shown) is None, f"{what}: {bad_end(shown)}\n{shown}"
    assert not pid_alive(terminal.pid), what
    assert fleetwardens_in(cwd) == [], what


def test_ctrl_c_at_the_idle_prompt_exits_zero_every_time(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    """Ctrl-C at the prompt, in six fresh processes: each exits 0 with no fatal error or
    traceback on the terminal, and leaves no process."""
    for round_ in range(ROUNDS):
        cwd = tmp_path / f"round-{round_}"
        cwd.mkdir()
        terminal = Terminal(cwd)
        terminals.append(terminal)
        assert terminal.wait_for_prompt(), terminal.screen()
        terminal.keys("C-c")
        _ended_cleanly(terminal, cwd, f"round {round_}")


def test_ctrl_c_while_it_starts_exits_zero_every_time(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    """Ctrl-C while Fleetwarden is still starting (once its log is open, while it loads
    the app; once its ledger is there, while it starts it), in six fresh processes: each
    exits 0 with no traceback, and leaves no process."""
    for round_ in range(ROUNDS):
        cwd = tmp_path / f"round-{round_}"
        cwd.mkdir()
        terminal = Terminal(cwd)
        terminals.append(terminal)
        state = cwd / ".fleetwarden"
        ready = state / ("fleetwarden.log" if round_ % 2 else "ledger.db")
        assert wait_until(lambda r=ready, t=terminal: r.exists() or t.ended()), terminal.history()
        terminal.keys("C-c")
        _ended_cleanly(terminal, cwd, f"round {round_}")


def test_ctrl_c_during_a_command_exits_zero_every_time(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    """Ctrl-C while a spawn is being handled (at once after Enter, or once the agent's
    process is there), in six fresh processes: each exits 0 with no fatal error or
    traceback, and leaves no process of its own (the agent is left to be reattached)."""
    for round_ in range(ROUNDS):
        cwd = tmp_path / f"round-{round_}"
        cwd.mkdir()
        terminal = Terminal(cwd)
        terminals.append(terminal)
        try:
            assert terminal.wait_for_prompt(), terminal.screen()
            terminal.type("spawn demo --prompt 'count to 3'")
            if round_ % 2:
                workdir = cwd / ".fleetwarden" / "agents" / "demo" / "work"
                assert wait_until(lambda w=workdir: stub_processes_in(w) != []), terminal.screen()
            terminal.keys("C-c")
            _ended_cleanly(terminal, cwd, f"round {round_}")
        finally:
            end_agents(cwd / ".fleetwarden")


def test_sigterm_at_the_prompt_exits_zero_and_gives_the_terminal_back(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    """SIGTERM with a half-typed line: exit 0, and the terminal echoes and edits lines
    again as it did before (stty says so after Fleetwarden ended)."""
    terminal = Terminal(tmp_path, then="stty -a; sleep 60")
    terminals.append(terminal)
    assert terminal.wait_for_prompt(), terminal.screen()
    terminal.type("who", enter=False)
    assert wait_until(lambda: terminal.screen().rstrip().endswith("fleetwarden> who"))
    [pid] = fleetwardens_in(tmp_path)
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: "icanon" in terminal.screen()), terminal.history()
    settings = terminal.history().split()
    assert "icanon" in settings and "echo" in settings, terminal.history()
    assert "-icanon" not in settings and "-echo" not in settings
    assert bad_end(terminal.history()) is None, terminal.history()
    assert not pid_alive(pid)


def test_ctrl_d_at_the_prompt_exits_zero_and_gives_the_terminal_back(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    """Ctrl-D on an empty line is the end of input: exit 0, the terminal as it was."""
    terminal = Terminal(tmp_path, then='echo "exit status $status"; stty -a; sleep 60')
    terminals.append(terminal)
    assert terminal.wait_for_prompt(), terminal.screen()
    terminal.type("whoami")
    assert wait_until(lambda: "You are console on console" in terminal.screen())
    terminal.keys("C-d")
    assert wait_until(lambda: "icanon" in terminal.screen()), terminal.history()
    assert "exit status 0" in terminal.history()
    settings = terminal.history().split()
    assert "-icanon" not in settings and "-echo" not in settings, terminal.history()
    assert bad_end(terminal.history()) is None, terminal.history()
    assert fleetwardens_in(tmp_path) == []


def test_ctrl_c_on_a_half_typed_line_clears_it_and_a_second_one_leaves(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    """Ctrl-C with a half-typed line clears the line, says how to leave and keeps running;
    Ctrl-C on the empty line then ends it cleanly, the terminal as it was."""
    terminal = Terminal(tmp_path, then='echo "exit status $status"; stty -a; sleep 60')
    terminals.append(terminal)
    assert terminal.wait_for_prompt(), terminal.screen()
    terminal.type("spawn de", enter=False)
    assert wait_until(lambda: terminal.screen().rstrip().endswith("fleetwarden> spawn de"))
    terminal.keys("C-c")
    assert wait_until(lambda: "Ctrl-C cleared the line" in terminal.screen()), terminal.history()
    assert terminal.screen().rstrip().endswith("fleetwarden>"), terminal.screen()
    assert fleetwardens_in(tmp_path) != []
    terminal.type("whoami")
    assert wait_until(lambda: "You are console on console" in terminal.screen())
    terminal.keys("C-c")
    assert wait_until(lambda: "icanon" in terminal.screen()), terminal.history()
    assert "exit status 0" in terminal.history()
    settings = terminal.history().split()
    assert "-icanon" not in settings and "-echo" not in settings, terminal.history()
    assert bad_end(terminal.history()) is None, terminal.history()
    assert "Agent de" not in terminal.history()
