"""The processes of an agent's sandbox, as the host sees them.

The agent shim records the host pid of the sandbox's init process (its PID 1) in the run
directory (``sandbox.json``, written before ``agent.pid``), with the control groups it put
the sandbox in (:func:`sandbox_groups`: what a freeze freezes). Every process the agent
started lives in that pid namespace, whatever process group or session it made for
itself: :func:`namespace_pids` finds them all (to stop them with SIGSTOP where no group
can be frozen), and killing the init process ends the whole namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

from fleet.sandbox.host.procfs import process_start_ticks

SANDBOX_FILE = "sandbox.json"


def pid_namespace(pid: int) -> str | None:
    """The pid namespace of ``pid`` (``pid:[4026531836]``), or ``None`` if it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def namespace_pids(pid: int) -> list[int]:
    """The host pids of every process in the pid namespace ``pid`` lives in — the
    namespace its init process (``pid``, from :func:`sandbox_init_pid`) leads — sorted,
    ``pid`` included; empty if it is gone. A pid in the host's own namespace is refused
    (that would be every process of the host): ``ValueError``."""
    wanted = pid_namespace(pid)
    if wanted is None:
        return []
    if wanted == pid_namespace(os.getpid()):
        raise ValueError(f"process {pid} is not in a sandbox: it shares Fleetwarden's namespace")
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and pid_namespace(int(entry)) == wanted:
            found.append(int(entry))
    return sorted(found)


def sandbox_init_pid(run_dir: Path) -> int | None:
    """The host pid of the run's sandbox init process, while that very process lives
    (not a recycled pid); ``None`` for a run without a sandbox or one that ended."""
    try:
        record = json.loads((run_dir / SANDBOX_FILE).read_text(encoding="utf-8"))
        pid, ticks = int(record["init_pid"]), record.get("start_ticks")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    now = process_start_ticks(pid)
    if now is None or (ticks is not None and now != ticks):
        return None
    return pid


def sandbox_groups(run_dir: Path) -> tuple[Path, ...]:
    """The control groups the shim put the run's sandbox in (empty: none, or a run whose
    shim recorded none)."""
    try:
        record = json.loads((run_dir / SANDBOX_FILE).read_text(encoding="utf-8"))
        groups = record.get("cgroups", [])
    except (OSError, ValueError, AttributeError):
        return ()
    if not isinstance(groups, list):
        return ()
    return tuple(Path(group) for group in groups if isinstance(group, str) and group)


def kill_sandbox(run_dir: Path) -> None:
    """SIGKILL the run's sandbox init process, ending everything in its namespace."""
    pid = sandbox_init_pid(run_dir)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
