"""`fleetwarden init DIR` at a real terminal (a pty): a typo answering a question with a
fixed set of answers (the preset, the forge's kind) is answered with the one meant and the
same question put again; Ctrl-C at a question leaves with nothing written."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

TIMEOUT = 30.0
PRESET_Q = "Preset (solo, pair, forge, pipeline) [solo]: "
KIND_Q = "Forge kind (github, gitea, gitlab) [github]: "


class Terminal:
    """``fleetwarden init`` on a pty: what it wrote to the terminal, and lines typed to it."""

    def __init__(self, proc: subprocess.Popen[bytes], master: int) -> None:
        self.proc = proc
        self.master = master
        self.seen = ""

    def expect(self, text: str, count: int = 1) -> None:
        """Read until ``text`` has shown ``count`` times (a deadline, never a sleep)."""
        deadline = time.monotonic() + TIMEOUT
        while self.seen.count(text) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r} x{count}; the terminal shows:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the pty's far end closed: the process is gone
                    chunk = b""
                assert chunk, f"ended before {text!r} x{count}; the terminal shows:\n{self.seen}"
                self.seen += chunk.decode(errors="replace").replace("\r\n", "\n")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def drain_and_wait(self) -> int:
        """The exit status, reading what is left so the process never blocks on the pty."""
        deadline = time.monotonic() + TIMEOUT
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running; it shows:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                with suppress(OSError):
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
        return self.proc.returncode

    def interrupt(self) -> int:
        """Ctrl-C, as a person presses it at the question shown, and the exit status.

        A SIGINT that lands after the prompt is written but before the line editor waits
        for a key (CPython's readline: a window of microseconds, which a person never hits
        and a test right after the prompt can) is taken only at the next key; so it is sent
        again, as a person would press it again, when the process is still there 5 s on
        (it leaves within a second of one it took)."""
        deadline = time.monotonic() + TIMEOUT
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running; it shows:\n{self.seen}"
            os.killpg(self.proc.pid, signal.SIGINT)
            pressed = time.monotonic()
            while self.proc.poll() is None and time.monotonic() - pressed < 5.0:
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if ready:
                    with suppress(OSError):
                        self.seen += os.read(self.master, 4096).decode(errors="replace")
        return self.proc.returncode


def _ctrl_c_as_at_a_terminal() -> None:
    # A runner started in the background ignores SIGINT, and its children inherit that;
    # a user's shell gives a command the default, which Ctrl-C's KeyboardInterrupt needs.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def init_at_a_terminal(cwd: Path, *args: str) -> Iterator[Terminal]:
    """``fleetwarden init ARGS`` with a pty for its stdin, stdout and stderr; killed if the
    test ends first."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(FLEETWARDEN), "init", *args],
        cwd=cwd,
        env=clean_env(),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_ctrl_c_as_at_a_terminal,
    )
    os.close(slave)
    try:
        yield Terminal(proc, master)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT)
        os.close(master)


def test_a_misspelt_preset_is_asked_again(tmp_path: Path) -> None:
    """`forj` for the preset says did-you-mean 'forge' and asks the preset again; a misspelt
    forge kind likewise; the answers then typed are the ones written."""
    with init_at_a_terminal(tmp_path, "fleet") as term:
        term.expect(PRESET_Q)
        term.type("forj")
        term.expect("unknown preset 'forj': did you mean 'forge'?")
        term.expect(PRESET_Q, 2)
        term.type("forge")
        term.expect(KIND_Q)
        term.type("gitlob")
        term.expect("unknown forge kind 'gitlob': did you mean 'gitlab'?")
        term.expect(KIND_Q, 2)
        term.type("gitlab")
        for question in ("Its API root", "The repository (OWNER/NAME)", "The bot's login there"):
            term.expect(question)
            term.type("")
        assert term.drain_and_wait() == 0, term.seen
    config = (tmp_path / "fleet" / "fleetwarden.yaml").read_text()
    assert re.search(r"(?m)^  gitlab:", config), config


def test_ctrl_c_at_a_question_writes_nothing(tmp_path: Path) -> None:
    """Ctrl-C at the preset question asked again after a typo leaves, writing nothing."""
    with init_at_a_terminal(tmp_path, "fleet") as term:
        term.expect(PRESET_Q)
        term.type("forj")
        term.expect(PRESET_Q, 2)
        assert term.interrupt() == 130, term.seen
    assert not (tmp_path / "fleet").exists()
