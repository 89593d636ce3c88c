"""One lane per agent: the host user it runs as, the files it owns, the caps the kernel
keeps on it, and what of all that this host enforces.

When Fleetwarden runs as root, each sandboxed agent runs as a host user of its own, never
root: uid = gid = :data:`FIRST_UID` + n, allocated once per agent name and kept in
``<state_dir>/sandbox/uids.json``. The kernel then keeps agents apart even where a path
shows through the sandbox: one agent cannot read another's 0600 files, root's 0600 files
(``/etc/shadow``, a secrets file anywhere) are closed to all of them, and
``RLIMIT_NPROC`` counts each agent's processes apart. Its HOME and workdir are handed
to that user (:func:`hand_over`: the tree is chowned, never following a symlink and never
touching a file with more than one link, which could be a file outside the lane).

When Fleetwarden runs as an ordinary user, agents share its uid: lanes are drawn by the
sandbox's mounts alone (each agent sees only its own workdir and HOME), and the rlimits
apply to that shared uid.

Per-agent memory and process caps come from control groups where the host lets
Fleetwarden set them (:mod:`fleet.sandbox.cgroups`); :func:`enforcement` says what holds
here, and Fleetwarden logs it at start.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from fleet.private_files import write_private
from fleet.sandbox import cgroups

log = logging.getLogger(__name__)

FIRST_UID = 1_600_000
"""The first host uid (and gid) of agents' lanes when Fleetwarden runs as root."""
LANES = 60_000
"""How many agent uids the range holds."""
RLIMITS: tuple[tuple[str, int], ...] = (("NPROC", 4096), ("NOFILE", 16384), ("CORE", 0))
"""What every sandboxed agent may have at most: processes (per uid), open files, core dumps."""


class Lanes:
    """The host uid of each agent, allocated once and kept under the state dir."""

    def __init__(self, directory: Path, *, root: bool | None = None) -> None:
        self._file = directory / "uids.json"
        self.distinct = os.geteuid() == 0 if root is None else root

    def uid_for(self, name: str) -> int | None:
        """``name``'s own host uid (also its gid), allocated on first use; ``None`` when
        agents share Fleetwarden's uid (it is not root)."""
        if not self.distinct:
            return None
        uids = self._load()
        if name not in uids:
            taken = set(uids.values())
            free = next((n for n in range(LANES) if FIRST_UID + n not in taken), None)
            if free is None:
                raise OSError(f"all {LANES} agent uids from {FIRST_UID} are taken")
            uids[name] = FIRST_UID + free
            write_private(self._file, json.dumps(uids, indent=1, sort_keys=True))
        return uids[name]

    def _load(self) -> dict[str, int]:
        try:
            loaded = json.loads(self._file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OSError(f"{self._file} is unreadable ({exc}); remove it to start over") from exc
        if not isinstance(loaded, dict):
            raise OSError(f"{self._file} is not a mapping of agent names to uids")
        return {str(k): int(v) for k, v in loaded.items() if isinstance(v, int)}


def hand_over_lane(home: Path, workdir: Path, uid: int) -> None:
    """Hand an agent's HOME and workdir to ``uid``; ``ValueError`` for a workdir so near
    ``/`` (``/srv``, ``/``) that handing it over would give the agent a system tree."""
    if len(workdir.resolve().parts) < 3:
        raise ValueError(
            f"its workdir {workdir} is too near / to be handed to the agent's own user; "
            "give it a directory of its own"
        )
    hand_over(home, uid)
    hand_over(workdir, uid)


def hand_over(top: Path, uid: int) -> int:
    """Make the tree at ``top`` ``uid``'s (uid and gid); how many entries changed.

    Symlinks are never followed (``fwalk`` holds each directory open, so no level can be
    swapped for a link on the way down), and a file with more than one hard link is left
    as it is: its other name may lie outside the lane."""
    top = top.resolve()  # the workdir the operator named may be a link; nothing below is
    if not top.is_dir():
        return 0
    changed = 0
    if _own(top, uid, None):
        changed += 1
    for _, dirs, files, dir_fd in os.fwalk(top, follow_symlinks=False):
        for name in (*dirs, *files):
            if _own(name, uid, dir_fd):
                changed += 1
    return changed


def _own(path: Path | str, uid: int, dir_fd: int | None) -> bool:
    try:
        info = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if info.st_uid == uid and info.st_gid == uid:
        return False
    if not stat.S_ISDIR(info.st_mode) and info.st_nlink > 1:
        log.warning("left %s as it is: it has %d hard links", path, info.st_nlink)
        return False
    os.chown(path, uid, uid, dir_fd=dir_fd, follow_symlinks=False)
    return True


@dataclass(frozen=True, slots=True)
class Enforcement:
    """What keeps agents apart on this host."""

    distinct_uids: bool
    cgroup: str  # the caps per agent, or why there are none (:func:`cgroups.describe`)

    def lines(self) -> list[str]:
        caps = ", ".join(f"{name}={value}" for name, value in RLIMITS)
        users = (
            f"each agent runs as a host uid of its own (from {FIRST_UID})"
            if self.distinct_uids
            else "agents share Fleetwarden's uid (it is not root): lanes are drawn by mounts only"
        )
        return [users, f"rlimits of every agent: {caps}", self.cgroup]


def enforcement(lanes: Lanes, root: Path = cgroups.ROOT) -> Enforcement:
    """What this host enforces between agents, for the log at start and check-config."""
    return Enforcement(distinct_uids=lanes.distinct, cgroup=cgroups.describe(root))
