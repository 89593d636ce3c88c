"""Pausing and continuing all of an agent's processes: SIGSTOP / SIGCONT to its process
group and to every process descended from its run's first process.

A sandboxed agent's processes are every process of its sandbox's PID namespace
(:mod:`fleet.sandbox.procs`), whatever group or session they made for themselves; an
unsandboxed one that left its process group is still found as long as it has not left the
tree (double-forked away to init). Stopping is repeated until a
pass finds no process it had not stopped, so a child forked while the first pass ran is
stopped too — a stopped process forks no more.

The group's leader is left out when it is not the agent itself: it is the backend's shim
(:mod:`fleet.backends.agent_shim`), Fleetwarden's own process, which only waits for the
agent. Stopping it would undo the freeze under tmux: the shim is the pane's process, and
tmux continues (SIGCONT) a pane's whole process group as soon as it sees that process stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from fleet.model import RunHandle
from fleet.sandbox.procs import namespace_pids, sandbox_init_pid

PROC: Final = Path("/proc")
MAX_PASSES: Final = 20


def children_map(proc: Path = PROC) -> dict[int, list[int]]:
    """Every process's children, from ``/proc/<pid>/stat`` (parent pid is field 4)."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            # The command name (field 2) is in parentheses and may contain spaces.
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def group_members(pgid: int, proc: Path = PROC) -> list[int]:
    """The processes whose process group is ``pgid``."""
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
                members.append(int(entry.name))
    return members


def tree(root: int, children: dict[int, list[int]]) -> list[int]:
    """``root`` and every process descended from it."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def signal_all(
    root: int, pgid: int, signum: signal.Signals, *, sandbox_init: int | None = None
) -> int:
    """Send ``signum`` to ``root``'s tree and process group (but for a leader that is not
    ``root``: the shim) — and, for a sandboxed run, every process of its sandbox
    (``sandbox_init``: the host pid of its PID 1) — until no new process turns up; the
    number of processes signalled."""
    done: set[int] = set()
    shim = {pgid} - {root}
    for _ in range(MAX_PASSES):
        fresh = _targets(root, pgid, sandbox_init) - done - shim
        if not fresh:
            break
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        done |= fresh
    return len(done)


def _targets(root: int, pgid: int, sandbox_init: int | None) -> set[int]:
    pids: Iterable[int] = tree(root, children_map()) if _exists(root) else ()
    found = set(pids) | set(group_members(pgid))
    if sandbox_init is not None:
        with contextlib.suppress(ValueError):  # not a sandbox after all: tree and group do
            found |= set(namespace_pids(sandbox_init))
    return found


def _exists(pid: int) -> bool:
    return (PROC / str(pid)).exists()


def signal_run(handle: RunHandle, signum: signal.Signals) -> None:
    """``signum`` to every process of the run ``handle`` finds (its sandbox's, when it
    has one)."""
    init = sandbox_init_pid(handle.run_dir)
    signal_all(handle.pid, handle.pgid, signum, sandbox_init=init)
