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
  ``…/memory/fleetwarden-<id>/<agent>`` and ``…/pids/fleetwarden-<id>/<agent>``, and a
  group ``…/freezer/fleetwarden-<id>/<agent>`` too where the ``freezer`` hierarchy is
  writable.

The agent's group is also what a freeze pauses (:mod:`fleet.sandbox.host.cgroup_freezer`): v2's
own ``cgroup.freeze``, or v1's ``freezer`` group. A group is made thawed, whatever an earlier
run left in it.

An ordinary user gets the same caps in a group delegated to it (:func:`place`): on cgroup
v2, the parent of the group Fleetwarden runs in, when that parent is its own (systemd's
``Delegate=yes`` with ``DelegateSubgroup=``: the unit's group is delegated, Fleetwarden
runs in a leaf below it, and agents' groups are made beside that leaf — v2 lets a group
with processes of its own have no sub-groups with controllers); on cgroup v1, the
``memory`` and ``pids`` groups it runs in, when both are its own (``cgcreate -a -t``), and
the ``freezer`` group it runs in when that is its own too.

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
SELF = Path("/proc/self/cgroup")
"""Where the kernel says which groups this process is in."""
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


@dataclass(frozen=True, slots=True)
class Place:
    """Where agents' groups are made: the cgroup version, the parent directory in each
    hierarchy (v2: one; v1: memory's, then pids'), whether it is a group delegated to
    an ordinary user rather than the top of the hierarchy, and on v1 the parent in the
    ``freezer`` hierarchy (``None``: none Fleetwarden may write; v2 needs none)."""

    version: int
    parents: tuple[Path, ...]
    delegated: bool = False
    freezer: Path | None = None

    @property
    def tops(self) -> tuple[Path, ...]:
        """Every parent an agent's groups are made in."""
        return self.parents if self.freezer is None else (*self.parents, self.freezer)


def place(root: Path = ROOT, own: Path = SELF) -> Place | None:
    """Where this process may make agents' groups (the top of the hierarchy first, then a
    group delegated to it), or ``None`` when nowhere."""
    if _v2(root):
        return Place(2, (root,))
    if _v1(root):
        freezer = root / "freezer"
        writable = os.access(freezer / "cgroup.procs", os.W_OK) and os.access(freezer, os.W_OK)
        return Place(1, (root / "memory", root / "pids"), freezer=freezer if writable else None)
    mine = _own_groups(own)
    if (root / "cgroup.controllers").exists():
        leaf = _inside(root, mine.get(""))
        parent = leaf.parent if leaf is not None and leaf != root else None
        if parent is None or parent == root or not (_v2(parent) and _writable(parent)):
            return None
        if leaf is not None and _shared(parent, leaf.name):
            return None
        return Place(2, (parent,), delegated=True)
    groups = [_inside(root / name, mine.get(name)) for name in ("memory", "pids")]
    dirs = tuple(group for group in groups if group is not None)
    tops = (root / "memory", root / "pids")
    if len(dirs) == 2 and dirs != tops and all(os.access(d, os.W_OK) for d in dirs):
        own_freezer = _inside(root / "freezer", mine.get("freezer"))
        if own_freezer == root / "freezer" or not (own_freezer and _writable(own_freezer)):
            own_freezer = None
        return Place(1, dirs, delegated=True, freezer=own_freezer)
    return None


def _own_groups(own: Path) -> dict[str, str]:
    """Controller (``""`` for v2) → the path of the group this process is in."""
    try:
        text = own.read_text(encoding="utf-8")
    except OSError:
        return {}
    groups: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(","):
            groups.setdefault(controller, path)
    return groups


def _inside(top: Path, path: str | None) -> Path | None:
    """``path`` (as ``/proc/self/cgroup`` gives it) under the hierarchy mounted at
    ``top``; ``None`` when unknown or not a directory there."""
    if path is None or not path.startswith("/") or "/.." in path:
        return None
    here = top / path.lstrip("/")
    return here if here.is_dir() else None


def _shared(group: Path, leaf: str) -> bool:
    """Whether ``group`` holds groups of others beside Fleetwarden's leaf and its agents'
    (a user's ``app.slice`` is the user's to write, but its manager's to lay out): then it
    is not a group delegated to this service."""
    mine = {leaf, ".control"}  # systemd runs a delegated unit's ExecReload= etc. there
    try:
        inner = [entry.name for entry in os.scandir(group) if entry.is_dir()]
    except OSError:
        return True
    return any(name not in mine and name.partition("-")[0] != GROUP for name in inner)


def _writable(group: Path) -> bool:
    """Whether this process may make sub-groups of ``group`` and move processes in it."""
    return os.access(group, os.W_OK) and os.access(group / "cgroup.procs", os.W_OK)


def problem(root: Path = ROOT, own: Path = SELF) -> str | None:
    """Why per-agent caps cannot be set here, or ``None`` when they can."""
    if place(root, own) is not None:
        return None
    if (root / "cgroup.controllers").exists():
        present = set((root / "cgroup.controllers").read_text(encoding="ascii").split())
        missing = {"memory", "pids"} - present
        if missing:
            return f"cgroup v2 has no {' or '.join(sorted(missing))} controller here"
        leaf = _inside(root, _own_groups(own).get(""))
        if leaf is not None and leaf != root and _writable(leaf):
            return (
                f"the group it runs in, {leaf}, is delegated to it, but cgroup v2 gives no "
                "sub-groups to a group with processes: start it in a sub-group of the "
                "delegated one (systemd 254+: DelegateSubgroup= beside Delegate=yes)"
            )
        return "Fleetwarden may not write the cgroup v2 hierarchy (not root, none delegated)"
    if (root / "memory").is_dir() and (root / "pids").is_dir():
        return "Fleetwarden may not write the cgroup v1 memory and pids hierarchies"
    return f"no cgroup hierarchy with memory and pids controllers at {root}"


def prepare(
    agent: str,
    root: Path = ROOT,
    memory: int | None = None,
    group: str = GROUP,
    own: Path = SELF,
) -> Caps | None:
    """Make ``agent``'s groups (under ``group``, at :func:`place`) with their caps; ``None``
    when this host allows none. Raises ``OSError`` when the hierarchy refuses."""
    memory = int(host_memory() * MEMORY_SHARE) if memory is None else memory
    where = place(root, own)
    if where is None:
        return None
    if where.version == 2:
        top = where.parents[0]
        parent, here = top / group, top / group / agent
        for attempt in range(3):  # another run's end may remove the parent meanwhile
            try:
                parent.mkdir(exist_ok=True)
                for level in (top, parent):
                    (level / "cgroup.subtree_control").write_text("+memory +pids", "ascii")
                here.mkdir(exist_ok=True)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        limits = {"memory.max": memory, "pids.max": PIDS_MAX}
        _write(here, limits)
        _thawed(here / "cgroup.freeze", "0")
        return Caps((here,), limits)
    dirs = tuple(top / group / agent for top in where.tops)
    for here in dirs:
        for attempt in range(3):  # another run's end may remove the parent meanwhile
            try:
                here.mkdir(parents=True, exist_ok=True)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
    memory_dir, pids_dir, *freezer = dirs
    _write(memory_dir, {"memory.limit_in_bytes": memory})
    _write(pids_dir, {"pids.max": PIDS_MAX})
    for here in freezer:
        _thawed(here / "freezer.state", "THAWED")
    return Caps(dirs, {"memory": memory, "pids.max": PIDS_MAX})


def remove(agent: str, root: Path = ROOT, group: str = GROUP, own: Path = SELF) -> bool:
    """Remove ``agent``'s groups, and the Fleetwarden's group once empty; whether one of
    ``agent``'s still holds a process (its run's last moments: try again). Never another
    agent's: an empty one may be a launch that has not joined it yet."""
    busy = False
    where = place(root, own)
    every = (root, root / "memory", root / "pids", root / "freezer")
    tops = where.tops if where is not None else every
    for parent in (top / group for top in tops):
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


def _thawed(control: Path, word: str) -> None:
    """Thaw a group an earlier run may have left frozen (a kernel without v2's freezer
    has no ``cgroup.freeze``: nothing to thaw)."""
    with contextlib.suppress(FileNotFoundError):
        control.write_text(word, encoding="ascii")


def describe(root: Path = ROOT, own: Path = SELF) -> str:
    """One line for the log at start: the caps, and where they are made (the hierarchy's
    top, or a group delegated to Fleetwarden), or why there are none."""
    where = place(root, own)
    if where is None:
        return f"per-agent cgroup memory and process caps: NOT enforced ({problem(root, own)})"
    at = f", in the group delegated to it, {where.parents[0]}" if where.delegated else ""
    memory = int(host_memory() * MEMORY_SHARE) // (1024 * 1024)
    if where.version == 2 or where.freezer is not None:
        freeze = f"freeze: the kernel's cgroup v{where.version} freezer"
    else:
        freeze = "freeze: SIGSTOP to every process (no freezer hierarchy Fleetwarden may write)"
    return (
        f"per-agent cgroup memory and process caps: enforced (cgroup v{where.version}{at}: "
        f"at most {memory} MiB and {PIDS_MAX} processes per agent); {freeze}"
    )
