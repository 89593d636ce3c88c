"""One lane per agent: the host user it runs as, the files it owns, the caps the kernel
keeps on it, and what of all that this host enforces.

When Fleetwarden runs as root, each sandboxed agent runs as a host user of its own, never
root: uid = gid = :data:`FIRST_UID` + n, allocated once per agent name and kept in
``<state_dir>/sandbox/uids.json``. The kernel then keeps agents apart even where a path
shows through the sandbox: one agent cannot read another's 0600 files, root's 0600 files
(``/etc/shadow``, a secrets file anywhere) are closed to all of them, and
``RLIMIT_NPROC`` counts each agent's processes apart. Its HOME and workdir are handed
to that user (:func:`hand_over`: the tree is chowned, never following a symlink and never
touching a file with more than one link, which could be a file outside the lane) and
closed to every other agent's (0750, group root, at the top): an agent whose sandbox
still shows another's workdir — one made, or first named, after it started — cannot
enter it.

When Fleetwarden runs as an ordinary user, agents share its uid: lanes are drawn by the
sandbox's mounts alone (each agent sees only its own workdir and HOME), and the rlimits
apply to that shared uid.

Per-agent memory and process caps come from control groups where the host lets
Fleetwarden set them (:mod:`fleet.sandbox.host.cgroups`); :func:`enforcement` says what holds
here — root or not, as the two systemd units in ``docs/systemd/`` run it, the lanes and
the caps — and Fleetwarden logs it at start, as ``check-config`` prints it.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from fleet.lane_files import hand_over as hand_over
from fleet.lane_files import hand_over_lane as hand_over_lane
from fleet.private_files import write_private
from fleet.sandbox.host import cgroups

log = logging.getLogger(__name__)

FIRST_UID = 1_600_000
"""The first host uid (and gid) of agents' lanes when Fleetwarden runs as root."""
LANES = 60_000
"""How many agent uids the range holds."""
RLIMITS: tuple[tuple[str, int], ...] = (("NPROC", 4096), ("NOFILE", 16384), ("CORE", 0))
"""What every sandboxed agent may have at most: processes (per uid), open files, core dumps."""
ROOT_UNIT = "docs/systemd/fleetwarden.service"
"""The unit that runs Fleetwarden as root: a uid per agent, cgroup caps."""
UNPRIVILEGED_UNIT = "docs/systemd/fleetwarden-unprivileged.service"
"""The unit that runs it as an ordinary user: one uid for all, caps only if delegated."""


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
            free = _first_free(uids)
            if free is None:
                raise OSError(f"all {LANES} agent uids from {FIRST_UID} are taken")
            uids[name] = free
            write_private(self._file, json.dumps(uids, indent=1, sort_keys=True))
        return uids[name]

    def next_uid(self) -> int | None:
        """The uid the next agent that has none will be given (the lowest free one), as
        things stand; ``None`` when agents share Fleetwarden's uid or none is free."""
        return _first_free(self._load()) if self.distinct else None

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


@dataclass(frozen=True, slots=True)
class Enforcement:
    """What keeps agents apart on this host, from the facts: whether Fleetwarden runs as
    root (``distinct_uids``), who it runs as, and what the control groups allow."""

    distinct_uids: bool
    cgroup: str  # the caps per agent, or why there are none (:func:`cgroups.describe`)
    user: str = "root (uid 0)"

    def lines(self) -> list[str]:
        caps = ", ".join(f"{name}={value}" for name, value in RLIMITS)
        if self.distinct_uids:
            mode = f"runs as root, like the root unit ({ROOT_UNIT})"
            users = f"each agent runs as a host uid of its own (from {FIRST_UID})"
        else:
            mode = (
                f"runs as {self.user}, not root, like the unprivileged unit ({UNPRIVILEGED_UNIT})"
            )
            users = (
                "agents share Fleetwarden's uid (it is not root): lanes are drawn by mounts only"
            )
        return [mode, users, f"rlimits of every agent: {caps}", self.cgroup]


def enforcement(lanes: Lanes, root: Path = cgroups.ROOT) -> Enforcement:
    """What this host enforces between agents, for the log at start and check-config."""
    return Enforcement(
        distinct_uids=lanes.distinct, cgroup=cgroups.describe(root), user=_who(os.geteuid())
    )


def _first_free(uids: dict[str, int]) -> int | None:
    taken = set(uids.values())
    return next((FIRST_UID + n for n in range(LANES) if FIRST_UID + n not in taken), None)


def _who(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
