"""Per-agent memory and process caps through the kernel's control groups, where this host
lets Fleetwarden set them.

Each agent gets a control group of its own, ``fleetwarden-<id>/<agent>`` (``<id>`` tells
apart Fleetwardens with different state dirs on one host, :func:`group_of`): at most
:data:`PIDS_MAX` processes and at most :data:`MEMORY_SHARE` of the host's memory (the
kernel's out-of-memory killer then ends a process of that agent, never Fleetwarden or
another agent). The agent shim moves itself into the group before it starts bubblewrap, so
everything in the sandbox is counted there. When its run ends the empty group is removed.

Two layouts are known:

* cgroup v2 (``/sys/fs/cgroup/cgroup.controllers`` lists ``memory`` and ``pids``, and
  Fleetwarden may write there, i.e. it is root): ``memory.max`` and ``pids.max`` in
  ``/sys/fs/cgroup/fleetwarden/<agent>``, the controllers enabled on the way down;
* cgroup v1 (the ``memory`` and ``pids`` hierarchies mounted under ``/sys/fs/cgroup``
  and writable): ``memory.limit_in_bytes`` and ``pids.max`` in
  ``…/memory/fleetwarden-<id>/<agent>`` and ``…/pids/fleetwarden-<id>/<agent>``.

Anything else (an ordinary user without a delegated subtree, a container without the
controllers) sets no caps, and :func:`problem` says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
GROUP = "fleetwarden"
PIDS_MAX = 4096
"""The most processes (and threads) one agent may have at once."""
MEMORY_SHARE = 0.5
"""The share of the host's memory one agent may use at most."""


@dataclass(frozen=True, slots=True)
class Caps:
    """What one agent's groups hold: the directories and the limit files written in each."""

    dirs: tuple[Path, ...]
    limits: dict[str, int]


def group_of(state_dir: Path) -> str:
    """The name of the group that holds the agents of the Fleetwarden of ``state_dir``."""
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:10]
    return f"{GROUP}-{digest}"


def host_memory(meminfo: Path = Path("/proc/meminfo")) -> int:
    """The host's memory in bytes (0 when unknown)."""
    try:
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _v2(root: Path) -> bool:
    try:
        present = set((root / "cgroup.controllers").read_text(encoding="ascii").split())
    except OSError:
        return False
    return {"memory", "pids"} <= present and os.access(root / "cgroup.subtree_control", os.W_OK)


def _v1(root: Path) -> bool:
    return all(os.access(root / name, os.W_OK) for name in ("memory", "pids"))


def problem(root: Path = ROOT) -> str | None:
    """Why per-agent caps cannot be set here, or ``None`` when they can."""
    if _v2(root) or _v1(root):
        return None
    if (root / "cgroup.controllers").exists():
        present = set((root / "cgroup.controllers").read_text(encoding="ascii").split())
        missing = {"memory", "pids"} - present
        if missing:
            return f"cgroup v2 has no {' or '.join(sorted(missing))} controller here"
        return "Fleetwarden may not write the cgroup v2 hierarchy (not root, none delegated)"
    if (root / "memory").is_dir() and (root / "pids").is_dir():
        return "Fleetwarden may not write the cgroup v1 memory and pids hierarchies"
    return f"no cgroup hierarchy with memory and pids controllers at {root}"


def prepare(
    agent: str, root: Path = ROOT, memory: int | None = None, group: str = GROUP
) -> Caps | None:
    """Make ``agent``'s groups (under ``group``) with their caps; ``None`` when this host
    allows none. Raises ``OSError`` when the hierarchy refuses."""
    memory = int(host_memory() * MEMORY_SHARE) if memory is None else memory
    if _v2(root):
        parent, here = root / group, root / group / agent
        for attempt in range(3):  # another run's end may remove the parent meanwhile
            try:
                parent.mkdir(exist_ok=True)
                for level in (root, parent):
                    (level / "cgroup.subtree_control").write_text("+memory +pids", "ascii")
                here.mkdir(exist_ok=True)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        limits = {"memory.max": memory, "pids.max": PIDS_MAX}
        _write(here, limits)
        return Caps((here,), limits)
    if _v1(root):
        memory_dir, pids_dir = root / "memory" / group / agent, root / "pids" / group / agent
        for here in (memory_dir, pids_dir):
            for attempt in range(3):  # another run's end may remove the parent meanwhile
                try:
                    here.mkdir(parents=True, exist_ok=True)
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
        _write(memory_dir, {"memory.limit_in_bytes": memory})
        _write(pids_dir, {"pids.max": PIDS_MAX})
        return Caps((memory_dir, pids_dir), {"memory": memory, "pids.max": PIDS_MAX})
    return None


def remove(agent: str, root: Path = ROOT, group: str = GROUP) -> bool:
    """Remove ``agent``'s groups, and the Fleetwarden's group once empty; whether one of
    ``agent``'s still holds a process (its run's last moments: try again). Never another
    agent's: an empty one may be a launch that has not joined it yet."""
    busy = False
    for parent in (root / group, root / "memory" / group, root / "pids" / group):
        here = parent / agent
        if here.is_dir():
            try:
                here.rmdir()
            except OSError:  # still holds a process
                busy = True
        with contextlib.suppress(OSError):
            parent.rmdir()  # a launch meanwhile makes it again (see prepare)
    return busy


def _write(here: Path, limits: dict[str, int]) -> None:
    for name, value in limits.items():
        (here / name).write_text(str(value), encoding="ascii")


def describe(root: Path = ROOT) -> str:
    """One line for the log at start: the caps, or why there are none."""
    why = problem(root)
    if why is not None:
        return f"per-agent cgroup memory and process caps: NOT enforced ({why})"
    kind = "v2" if _v2(root) else "v1"
    memory = int(host_memory() * MEMORY_SHARE) // (1024 * 1024)
    return (
        f"per-agent cgroup memory and process caps: enforced (cgroup {kind}: at most "
        f"{memory} MiB and {PIDS_MAX} processes per agent)"
    )
