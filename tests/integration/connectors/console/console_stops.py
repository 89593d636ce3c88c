"""What the console's stop tests share: what a clean end looks like, and ending the agents a
stopped Fleetwarden leaves running (as it should: the next start reattaches them)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from tests.integration.console_bot import pid_alive, processes_where, wait_until

ROUNDS = 6
"""Each way of stopping is tried this many times, each in a fresh process (a test that
alternates two moments tries each three times). The stop these tests were written for
(a thread blocked reading stdin, holding its lock, so that the interpreter's shutdown
died with a fatal error) failed every round, piped or at a terminal, idle, starting or
during a spawn: a few rounds catch such a fault, more only repeat it."""

BAD_ENDS = ("Fatal Python error", "Traceback", "Exception ignored", "could not acquire lock")


def bad_end(text: str) -> str | None:
    """The first sign in ``text`` (what was printed) that the process did not end cleanly."""
    return next((sign for sign in BAD_ENDS if sign in text), None)


def fleetwardens_in(cwd: Path) -> list[int]:
    """Pids of ``fleetwarden run`` processes started in ``cwd`` (not a shell running one)."""
    return processes_where(
        lambda where, cmdline: (
            where == str(cwd) and b"fleetwarden\0run" in cmdline and not cmdline.startswith(b"sh\0")
        )
    )


def end_agents(state_dir: Path) -> None:
    """Kill the agents Fleetwarden left running on ``state_dir`` (their whole process
    groups), and take away their control groups, so the test leaves nothing behind."""
    marker = str(state_dir).encode()
    shims = processes_where(lambda _, cmdline: b"agent_shim.py" in cmdline and marker in cmdline)
    groups: set[str] = set()
    for pid in shims:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
            groups.update(
                argv[i + 1].decode() for i, arg in enumerate(argv[:-1]) if arg == b"--cgroup"
            )
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue
    assert wait_until(lambda: not any(pid_alive(pid) for pid in shims), timeout=10)
    for group in groups:
        for path in (Path(group), Path(group).parent):
            with contextlib.suppress(OSError):
                path.rmdir()
