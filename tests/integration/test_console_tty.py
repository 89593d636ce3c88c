"""The console at a real terminal: the real `fleetwarden run` inside tmux."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, clean_env, wait_until

pytestmark = pytest.mark.integration


class Terminal:
    """One tmux session on a private server socket, so no user's tmux is touched."""

    def __init__(self, cwd: Path) -> None:
        self.socket = f"fw-test-{uuid.uuid4().hex[:8]}"
        env = clean_env()
        self._tmux(
            "new-session", "-d", "-x", "160", "-y", "50", "-s", "console", "-c", str(cwd),
            "-e", f"PATH={env['PATH']}", str(FLEETWARDEN), "run",
        )  # fmt: skip

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "console", "-l", text)
        self._tmux("send-keys", "-t", "console", "Enter")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "console")

    def alive(self) -> bool:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "has-session", "-t", "console"], capture_output=True
        )
        return result.returncode == 0

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed; run `bash tests/run.sh`, which installs it")
    term = Terminal(tmp_path)
    yield term
    term.close()


def test_interactive_console_shows_a_prompt_and_answers(terminal: Terminal) -> None:
    """At a terminal the console greets, prompts, answers commands and leaves on quit."""
    assert wait_until(lambda: "fleetwarden>" in terminal.screen()), terminal.screen()
    assert "type `help`, or `quit` to leave" in terminal.screen()
    terminal.type("spawn demo --prompt 'count to 2'")
    assert wait_until(lambda: "Agent demo started (stub)" in terminal.screen()), terminal.screen()
    terminal.type("!ps")
    assert wait_until(lambda: "1 of 1 agent running" in terminal.screen()), terminal.screen()
    terminal.type("stop demo")
    assert wait_until(lambda: "Stopped demo" in terminal.screen()), terminal.screen()
    terminal.type("quit")
    assert wait_until(lambda: not terminal.alive()), terminal.screen()
