"""A fleet's processes as ``/proc`` shows them: the orchestrator's memory, threads and CPU,
the machine's load, and the agents' process groups — found by where they run, and killed
at the end of a benchmark however it ends."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def proc_status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid``, in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def agent_groups(state_dir: Path) -> set[int]:
    """The process groups of the agents under ``state_dir`` that still exist."""
    groups: set[int] = set()
    own = os.getpgid(0)
    pids: set[int] = set()
    # Find them in /proc by their command line (the shim names its run dir) or working
    # directory (the agent) — never by the pids in agent.pid files: a stale one may by
    # now belong to an unrelated process, whose group would be killed.
    marker = str(state_dir)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry}/cwd")
            if marker in cmdline or cwd == marker or cwd.startswith(marker + os.sep):
                pids.add(int(entry))
    for pid in pids:
        with contextlib.suppress(OSError):
            pgid = os.getpgid(pid)
            if pgid > 1 and pgid != own:
                groups.add(pgid)
    return groups


def kill_agents(state_dir: Path) -> int:
    """SIGKILL every agent's process group found under ``state_dir``; how many groups."""
    groups = agent_groups(state_dir)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGCONT)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    time.sleep(0.5)  # a launch under way may still fork; sweep once more
    late = agent_groups(state_dir) - groups
    for pgid in late:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return len(groups | late)


def proc_status_kb_threads(pid: int) -> int:
    return proc_status_kb(pid, "Threads")


def launch_waits_ms(state_dir: Path) -> dict[str, list[float]]:
    """Where a spawn waits outside Fleetwarden, per run, from the files of its run dir:
    from the stdin FIFO's making (just before the shim is forked) to ``sandbox.json``
    (the shim started, bubblewrap set the sandbox up) and to ``agent.pid`` (the sandbox's
    first process running), in ms."""
    sandbox: list[float] = []
    pid: list[float] = []
    for run_dir in sorted(state_dir.glob("agents/*/runs/*")):
        try:
            made = (run_dir / "stdin").stat().st_ctime_ns
            ready = (run_dir / "agent.pid").stat().st_mtime_ns
        except OSError:
            continue
        pid.append((ready - made) / 1e6)
        with contextlib.suppress(OSError):
            sandbox.append(((run_dir / "sandbox.json").stat().st_mtime_ns - made) / 1e6)
    return {"sandbox_ready_ms": sandbox, "agent_pid_ms": pid}
