"""One lane per agent: the host user it runs as, the files it owns, the caps the kernel
keeps on it, and what of all that this host enforces.

When Fleetwarden runs as root, each sandboxed agent runs as a host user of its own, never
root: uid = gid, allocated once per agent name from this fleet's range and kept in
``<state_dir>/sandbox/uids.json``. The range is the fleet's on this host while it runs
(:mod:`fleet.sandbox.host.uid_register`): ``agent_uids`` in the config, else the range its
agents' uids are in, else the lowest free block of :data:`BLOCK` uids from
:data:`FIRST_UID`; another orchestrator on the machine is refused it. The kernel then keeps
agents apart even where a path shows through the sandbox: one agent cannot read another's
0600 files, root's 0600 files (``/etc/shadow``, a secrets file anywhere) are closed to all
of them, and ``RLIMIT_NPROC`` counts each agent's processes apart. Its HOME and workdir are handed
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
from fleet.sandbox.host.uid_ranges import Running, UidRange
from fleet.sandbox.host.uid_register import REGISTER, Lease, take

log = logging.getLogger(__name__)

FIRST_UID = 1_600_000
"""The first host uid (and gid) of agents' lanes when Fleetwarden runs as root."""
LANES = 60_000
"""How many agent uids the range holds."""
BLOCK = 1_000
"""How many of them a fleet holds on its host unless ``agent_uids`` says otherwise."""
SPAN = UidRange(FIRST_UID, LANES)
"""Where every fleet's range lies."""
RLIMITS: tuple[tuple[str, int], ...] = (("NPROC", 4096), ("NOFILE", 16384), ("CORE", 0))
"""What every sandboxed agent may have at most: processes (per uid), open files, core dumps."""
ROOT_UNIT = "docs/systemd/fleetwarden.service"
"""The unit that runs Fleetwarden as root: a uid per agent, cgroup caps."""
UNPRIVILEGED_UNIT = "docs/systemd/fleetwarden-unprivileged.service"
"""The unit that runs it as an ordinary user: one uid for all, caps only if delegated."""


class Lanes:
    """The host uid of each agent, allocated once from this fleet's range on the host and
    kept under the state dir.

    ``fleet`` is the state dir the host's register names the fleet by (default:
    ``directory``); ``wanted`` the range the config asks for (``agent_uids``), else one is
    chosen (:func:`~fleet.sandbox.host.uid_register.choose`) of ``count`` uids. The range is
    taken by :meth:`reserve` (at start; else at the first uid asked for) and let go by
    :meth:`release`."""

    def __init__(
        self,
        directory: Path,
        *,
        root: bool | None = None,
        fleet: Path | None = None,
        wanted: UidRange | None = None,
        count: int = BLOCK,
        config: Path | None = None,
        register: Path = REGISTER,
        running: Running | None = None,
    ) -> None:
        self._file = directory / "uids.json"
        self.distinct = os.geteuid() == 0 if root is None else root
        self._fleet = directory if fleet is None else fleet
        self._wanted = wanted
        self._count = count if wanted is None else wanted.count
        self._config = config
        self._register = register
        self._running = running  # the host's processes by uid (default: /proc)
        self._lease: Lease | None = None

    @property
    def range(self) -> UidRange | None:
        """The uids this fleet holds on the host (``None``: none held yet, or agents share
        Fleetwarden's uid)."""
        return None if self._lease is None else self._lease.range

    @property
    def asked(self) -> UidRange | None:
        """The range the config asks for (``agent_uids``), if any."""
        return self._wanted

    def reserve(self) -> UidRange | None:
        """Hold this fleet's range on the host, once (:class:`UidRangeHeld` when another
        fleet holds it, with the fix); ``None`` when agents share Fleetwarden's uid."""
        if not self.distinct:
            return None
        if self._lease is None:
            self._lease = take(
                self._fleet,
                wanted=self._wanted,
                count=self._count,
                span=SPAN,
                own=set(self._load().values()),
                config=self._config,
                register=self._register,
                running=self._running,
            )
        return self._lease.range

    def release(self) -> None:
        """Let this fleet's range go (at stop: no new uid is given after)."""
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def uid_for(self, name: str) -> int | None:
        """``name``'s own host uid (also its gid), allocated on first use from this fleet's
        range; ``None`` when agents share Fleetwarden's uid (it is not root)."""
        if not self.distinct:
            return None
        held = self._held()
        uids = self._load()
        kept = uids.get(name)
        if kept in held:
            return kept
        free = _first_free(uids, held)
        if free is None:
            raise OSError(
                f"all {held.count} agent uids of this fleet's range ({held}) are taken: "
                "give it more with `agent_uids: count: …` and restart"
            )
        if kept is not None:  # the range moved (agent_uids changed): its files follow
            log.info("agent %s moves from uid %d to %d, in this fleet's %s", name, kept, free, held)
        uids[name] = free
        write_private(self._file, json.dumps(uids, indent=1, sort_keys=True))
        return free

    def next_uid(self) -> int | None:
        """The uid the next agent that has none will be given (the lowest free one of this
        fleet's range), as things stand; ``None`` when agents share Fleetwarden's uid or
        none is free."""
        return _first_free(self._load(), self._held()) if self.distinct else None

    def _held(self) -> UidRange:
        """This fleet's range, checked at every uid given: still this fleet's lease."""
        self.reserve()
        if self._lease is None:  # only when agents share Fleetwarden's uid
            raise OSError("agents share Fleetwarden's uid here: there is no range")
        self._lease.check()
        return self._lease.range

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
    held: UidRange | None = None  # this fleet's range on the host, once taken
    asked: UidRange | None = None  # the range the config asks for, before it is taken

    def lines(self) -> list[str]:
        caps = ", ".join(f"{name}={value}" for name, value in RLIMITS)
        if self.distinct_uids:
            mode = f"runs as root, like the root unit ({ROOT_UNIT})"
            users = "each agent runs as a host uid of its own"
            if self.held is not None:
                users += f": this fleet holds {self.held} on this host, no other fleet may"
            elif self.asked is not None:
                users += f": this fleet asks for {self.asked}, held on this host at start"
            else:
                # Which block is free is only known when the register is read at start:
                # naming the span's first uid here told two fleets side by side the same.
                users += (
                    f", from a block this fleet takes on this host at start (in {SPAN}: the"
                    " block its agents already have, else the lowest no other fleet holds;"
                    " `agent_uids: {base: N}` names one)"
                )
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
        distinct_uids=lanes.distinct,
        cgroup=cgroups.describe(root),
        user=_who(os.geteuid()),
        held=lanes.range,
        asked=lanes.asked,
    )


def _first_free(uids: dict[str, int], held: UidRange) -> int | None:
    taken = set(uids.values())
    return next((uid for uid in range(held.first, held.last + 1) if uid not in taken), None)


def _who(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
