"""Whether a process is paused by a freeze, however it was paused: stopped by a signal
(state ``T``), or in a control group the kernel holds frozen (a v1 ``freezer`` group, or a
v2 group whose ``cgroup.events`` says ``frozen 1``) — and thawing such groups, so that a
test's cleanup can kill what a failed test left frozen (on cgroup v1 even SIGKILL waits
for the thaw)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from fleet.sandbox.host import cgroup_freezer
from fleet.sandbox.host.cgroup_freezer import Freezer

CGROUP = Path("/sys/fs/cgroup")


def freezers_of(pid: int) -> list[Freezer]:
    """The groups ``pid`` is in that the kernel can freeze (never a hierarchy's root)."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or parts[2] in ("", "/"):
            continue
        number, controllers, path = parts
        if number == "0" and not controllers:  # v2: at the top, or beside v1 (hybrid)
            top = CGROUP if (CGROUP / "cgroup.controllers").exists() else CGROUP / "unified"
            group = top / path.lstrip("/")
            if (group / cgroup_freezer.V2_CONTROL).exists():
                found.append(Freezer(group, 2))
        elif "freezer" in controllers.split(","):
            found.append(Freezer(CGROUP / "freezer" / path.lstrip("/"), 1))
    return found


def paused(pid: int) -> bool | None:
    """Whether ``pid`` is paused by a signal or a frozen group; ``None`` once it is gone
    (or a zombie: it has nothing left to run)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state = stat[stat.rindex(")") + 2]
    if state in ("Z", "X"):
        return None
    if state == "T":
        return True
    for freezer in freezers_of(pid):
        with contextlib.suppress(OSError):
            if freezer.holds(freezer.status.read_text()):
                return True
    return False


def pauses(pids: Iterable[int]) -> set[bool]:
    """Of the live processes among ``pids``: {True} when all are paused, {False} when none."""
    return {found for found in map(paused, pids) if found is not None}


def thaw_groups(pids: Iterable[int]) -> None:
    """Thaw every freezable group any of ``pids`` is in (a group that is not frozen is
    left as it is)."""
    for freezer in {f for pid in pids for f in freezers_of(pid)}:
        with contextlib.suppress(OSError):
            cgroup_freezer.thaw(freezer)
