"""Drive the real ``fleetwarden run`` at a real terminal: a tmux pane on a private server
socket (no user's tmux is touched), kept after the process ends so its exit status and
its last screen can be read."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

from fleet.sandbox.host.procfs import process_start_ticks
from tests.integration.console_bot import FLEETWARDEN, clean_env, pid_alive, wait_until


class Terminal:
    """``fleetwarden run ARGS`` in a ``width`` × ``height`` tmux pane, started in ``cwd``;
    ``then``: a shell command run in the pane after it ends (its ``$?`` is Fleetwarden's)."""

    def __init__(
        self,
        cwd: Path,
        *args: str,
        width: int = 160,
        height: int = 50,
        env: dict[str, str] | None = None,
        then: str | None = None,
    ) -> None:
        self.socket = f"fw-test-{uuid.uuid4().hex[:8]}"
        self.cwd = cwd
        env = env if env is not None else clean_env()
        exports = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        # remain-on-exit first, in the same call: the pane outlives the process however
        # fast it ends, with its exit status.
        try:
            self._tmux(
                "-f", "/dev/null", "start-server", ";",
                "set-option", "-g", "remain-on-exit", "on", ";",
                "new-session", "-d", "-x", str(width), "-y", str(height), "-s", "console",
                "-c", str(cwd), *exports, *self._command([str(FLEETWARDEN), "run", *args], then),
            )  # fmt: skip
            self.pid = int(self._tmux("display-message", "-p", "-t", "console", "#{pane_pid}"))
            """The pane's process: Fleetwarden, or the shell that runs it and ``then``."""
            self._ticks = process_start_ticks(self.pid)
        except BaseException:  # no Terminal to close: its server (and pane) end here
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(
                    ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10
                )
            raise

    @staticmethod
    def _command(argv: list[str], then: str | None) -> list[str]:
        if then is None:
            return argv  # run directly: the pane's process is Fleetwarden
        return ["sh", "-c", f'"$@"; status=$?; {then}; exit $status', "sh", *argv]

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip()

    def type(self, text: str, enter: bool = True) -> None:
        """Type ``text`` (as keys, literally), then Enter."""
        self._tmux("send-keys", "-t", "console", "-l", text)
        if enter:
            self._tmux("send-keys", "-t", "console", "Enter")

    def keys(self, *names: str) -> None:
        """Press keys by tmux's names (``C-c``, ``C-d``, ``Enter``)."""
        self._tmux("send-keys", "-t", "console", *names)

    def screen(self) -> str:
        """What the pane shows now."""
        return self._tmux("capture-pane", "-p", "-t", "console")

    def history(self) -> str:
        """Everything the pane printed, scrolled off or not."""
        return self._tmux("capture-pane", "-p", "-S", "-", "-t", "console")

    def wait_for_prompt(self, timeout: float = 30.0) -> bool:
        return wait_until(lambda: self.screen().rstrip().endswith("fleetwarden>"), timeout)

    def _end(self) -> str:
        """``dead status signal`` of the pane: ``1 0 `` once its process exited 0."""
        return self._tmux(
            "display-message", "-p", "-t", "console",
            "#{pane_dead} #{pane_dead_status} #{pane_dead_signal}",
        )  # fmt: skip

    def ended(self) -> bool:
        return self._status() is not None

    def exit_status(self, timeout: float = 30.0) -> int | None:
        """The process's exit status once it ended (``None`` if it did not in time);
        ``-N`` when signal N killed it."""
        wait_until(self.ended, timeout)
        return self._status()

    def _status(self) -> int | None:
        """How the process ended: as tmux says, or, while tmux has not reaped it yet (tmux
        3.3 may take long to), as its zombie's ``/proc`` entry says."""
        dead, *how = self._end().split()
        if dead == "1" and how:
            return int(how[0]) if len(how) == 1 else -int(how[-1])
        try:
            with open(f"/proc/{self.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[-1].split()
        except OSError:
            return None
        if fields[0] != "Z":
            return None
        code = int(fields[49])  # exit_code: the status as waitpid(2) gives it
        return -(code & 0x7F) if code & 0x7F else (code >> 8) & 0xFF

    def alive(self) -> bool:
        """Whether the pane's process still runs (its number not taken by another since)."""
        return process_start_ticks(self.pid) == self._ticks and pid_alive(self.pid)

    def close(self) -> None:
        """End the tmux server, and the process if it still runs."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
