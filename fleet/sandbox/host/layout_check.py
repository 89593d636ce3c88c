"""Layouts no sandbox can be built for here, found before bubblewrap runs: which
directory, and the fix — for ``check-config`` and for a launch alike.

The sandbox is built around any layout (:mod:`fleet.sandbox.host.reach`); what remains is what
no arrangement of mounts can change:

* ``/`` itself closed to the agents' user (``chmod o+x /``);
* a workdir that cannot be handed to its agent's own user (as root: :mod:`fleet.sandbox.
  lanes`) because its filesystem is read-only or keeps no file owners (FAT, exFAT, NTFS,
  ISO 9660, SMB), so the agent could not write it.

Which filesystem holds a path comes from ``/proc/self/mountinfo``: the mount whose point is
the longest prefix of where the path really lies.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fleet.sandbox.host.reach import Walker, arrange, closed_on_way

MOUNTINFO = Path("/proc/self/mountinfo")
NO_OWNERS = frozenset(
    {"vfat", "msdos", "exfat", "ntfs", "ntfs3", "fuseblk", "iso9660", "udf", "cifs", "smb3"}
)
"""Filesystems that keep no Unix owner per file (or let no one change it)."""


@dataclass(frozen=True, slots=True)
class Mount:
    """One mounted filesystem: where, what kind, and whether it is read-only."""

    point: Path
    fstype: str
    read_only: bool


def _unescape(field: str) -> str:
    """A mountinfo path field: spaces, tabs, newlines and backslashes come octal-escaped."""
    return re.sub(r"\\([0-7]{3})", lambda found: chr(int(found[1], 8)), field)


def mounts(text: str) -> list[Mount]:
    """The mounts of a ``/proc/<pid>/mountinfo`` text (pure)."""
    found = []
    for line in text.splitlines():
        head, dash, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not dash or len(fields) < 6 or not rest:
            continue
        options = set(fields[5].split(",")) | set(rest[2].split(",") if len(rest) > 2 else ())
        found.append(Mount(Path(_unescape(fields[4])), rest[0], "ro" in options))
    return found


def mount_of(path: Path, table: Iterable[Mount] | None = None) -> Mount | None:
    """The filesystem ``path`` (where it really lies) is on; the last one mounted on the
    longest matching point wins, as it hides those beneath."""
    real = Path(os.path.realpath(path))
    if table is None:
        try:
            table = mounts(MOUNTINFO.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return None
    best: Mount | None = None
    for mount in table:
        holds = real == mount.point or real.is_relative_to(mount.point)
        if holds and (best is None or len(mount.point.parts) >= len(best.point.parts)):
            best = mount
    return best


def handover_problem(workdir: Path, table: Iterable[Mount] | None = None) -> str | None:
    """Why ``workdir`` cannot be handed to an agent's own user, with the fix (``None``:
    nothing known stands in the way)."""
    mount = mount_of(workdir, table)
    if mount is None:
        return None
    if mount.read_only:
        return (
            f"its workdir {workdir} lies on a read-only filesystem ({mount.fstype} at "
            f"{mount.point}): give it a directory on a writable one"
        )
    if mount.fstype in NO_OWNERS:
        return (
            f"its workdir {workdir} lies on a {mount.fstype} filesystem (at {mount.point}), "
            "which keeps no file owners, so it cannot be handed to the agent's own user: "
            "give it a directory on one that does (ext4, xfs, btrfs, tmpfs)"
        )
    return None


@dataclass(frozen=True, slots=True)
class LayoutReport:
    """What ``check-config`` says of the layout: problems (it cannot work) and notes."""

    problems: list[str]
    notes: list[str]


def report(
    places: Iterable[Path], workdirs: Iterable[tuple[str, Path]], *, lanes: bool, uid: int
) -> LayoutReport:
    """The layout of Fleetwarden's ``places`` (state dir, config's and ledger's
    directories) and the sandboxed agents' ``workdirs`` (name, path), as an agent's user
    (``uid``; ``lanes``: its own, whose workdir is handed to it) walks it."""
    places, workdirs = list(places), list(workdirs)
    who = Walker.of(uid if lanes else None)
    problems: list[str] = []
    try:
        arrange(places, [path for _, path in workdirs], (), who)
    except OSError as exc:
        problems.append(f"agents cannot be sandboxed here: {exc.strerror}")
    if lanes:
        for name, path in workdirs:
            why = handover_problem(path)
            if why is not None:
                problems.append(f"agent {name!r} cannot start sandboxed: {why}")
    closed = closed_on_way([*places, *(path for _, path in workdirs)], who)
    notes = [
        f"sandboxes hide {path} whole (agents' users cannot enter it) and bind back what "
        "each agent needs inside"
        for path in closed
        if path != Path("/")
    ]
    return LayoutReport(problems, notes)
