"""Pausing and continuing all of an agent's processes: through the kernel's cgroup freezer
where the run has a control group it can freeze, else SIGSTOP / SIGCONT to its process
group and to every process descended from its run's first process.

:func:`freeze_run` freezes the run's group (:mod:`fleet.sandbox.host.cgroup_freezer`; the shim
records the groups of a sandboxed run, :func:`fleet.sandbox.host.procs.sandbox_groups`) and
returns once the kernel says every process in it is frozen: nothing in it runs, whatever
it forks or signals, the shim that leads it included (a frozen process is no stopped one:
tmux, which continues a pane's group when its process stops, sees nothing). Without such a
group — no sandbox, no freezer hierarchy Fleetwarden may write, a run started before its
shim recorded groups, a group that refuses the write — it falls back to signals.
:func:`thaw_run` thaws the group and sends SIGCONT as well (a run frozen by signals, by an
earlier Fleetwarden or in the fallback, continues too). :func:`thaw_for_stop` thaws only,
for a stop that has just signalled the run: on cgroup v1 not even SIGKILL acts on a frozen
process.

By signals: a sandboxed agent's processes are every process of its sandbox's PID
namespace (:mod:`fleet.sandbox.host.procs`), whatever group or session they made for
themselves; an unsandboxed one that left its process group is still found as long as it
has not left the tree (double-forked away to init). Stopping is repeated until a pass
finds no process it had not stopped, so a child forked while the first pass ran is
stopped too — a stopped process forks no more; but one that is not stopped yet can send
SIGCONT to the others, which is why the freezer comes first.

The group's leader is left out when it is not the agent itself: it is the backend's shim
(:mod:`fleet.backends.agent_shim`), Fleetwarden's own process, which only waits for the
agent. Stopping it would undo the freeze under tmux: the shim is the pane's process, and
tmux continues (SIGCONT) a pane's whole process group as soon as it sees that process stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from fleet.errors import FleetError
from fleet.model import RunHandle
from fleet.sandbox.host import cgroup_freezer
from fleet.sandbox.host.cgroup_freezer import Freezer, freezer_of
from fleet.sandbox.host.procs import namespace_pids, sandbox_groups, sandbox_init_pid

log = logging.getLogger(__name__)

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


def signal_run(handle: RunHandle, signum: signal.Signals) -> int:
    """``signum`` to every process of the run ``handle`` finds (its sandbox's, when it
    has one); how many."""
    init = sandbox_init_pid(handle.run_dir)
    return signal_all(handle.pid, handle.pgid, signum, sandbox_init=init)


def run_freezer(handle: RunHandle) -> Freezer | None:
    """The control group of the run ``handle`` finds that the kernel can freeze; ``None``:
    the run has none, and signals are what pause it."""
    return freezer_of(sandbox_groups(handle.run_dir), Path.exists)


async def freeze_run(handle: RunHandle) -> str:
    """Pause every process of the run: its group frozen by the kernel, or SIGSTOP to each
    process found when it has none that can be (or it refuses). How, in words, for the log.
    :class:`FleetError` when the kernel has not finished freezing in time."""
    freezer = run_freezer(handle)
    if freezer is not None:
        try:
            await cgroup_freezer.freeze(freezer)
        except OSError as exc:
            log.warning(
                "run %s: could not freeze control group %s (writing %s: %s); stopping its "
                "processes with SIGSTOP instead",
                handle.run_dir.name,
                freezer.group,
                freezer.control.name,
                exc.strerror or exc,
            )
        else:
            return f"control group {freezer.group} (cgroup v{freezer.version} freezer)"
    count = await asyncio.to_thread(signal_run, handle, signal.SIGSTOP)
    return f"SIGSTOP to {count} processes"


async def thaw_run(handle: RunHandle) -> None:
    """Continue every process of the run: thaw its group, then SIGCONT to each process
    found. :class:`FleetError` (after the SIGCONT) when the group refuses the thaw."""
    freezer = run_freezer(handle)
    refused: OSError | None = None
    if freezer is not None:
        try:
            cgroup_freezer.thaw(freezer)
        except OSError as exc:
            refused = exc
    await asyncio.to_thread(signal_run, handle, signal.SIGCONT)
    if refused is not None and freezer is not None:
        raise FleetError(
            f"could not thaw control group {freezer.group} (writing {freezer.control.name}: "
            f"{refused.strerror or refused}): its processes stay frozen"
        )


def thaw_for_stop(handle: RunHandle) -> None:
    """Thaw the run's group, if it has one, so that the signals of a stop that were just
    sent act (never an error: the stop goes on; a refusal is logged)."""
    freezer = run_freezer(handle)
    if freezer is None:
        return
    try:
        cgroup_freezer.thaw(freezer)
    except OSError as exc:
        log.warning("run %s: could not thaw %s: %s", handle.run_dir.name, freezer.group, exc)


class FreezesLocally:
    """A local backend's ``freeze`` and ``thaw``: the run's group on this machine, frozen
    with :func:`freeze_run` (how, logged) and thawed with :func:`thaw_run`."""

    async def freeze(self, handle: RunHandle) -> None:
        how = await freeze_run(handle)
        log.info("run %s frozen: %s", handle.run_dir.name, how)

    async def thaw(self, handle: RunHandle) -> None:
        await thaw_run(handle)
