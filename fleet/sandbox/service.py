"""The sandboxes at work: whether bubblewrap works here, each launch wrapped in one, and
the doors and forward proxies of locked agents.

:meth:`Sandboxes.start` probes once whether bubblewrap can make a sandbox on this host
(user namespaces may be off; :mod:`fleet.sandbox.host.bwrap_probe`). If it cannot,
:attr:`Sandboxes.problem` says why and every launch of an agent with ``sandbox: bwrap``
is refused with that reason and the fix (:mod:`fleet.sandbox.host.setup_hint`: the exact
command that installs bubblewrap here); agents with ``sandbox: none`` run as before.

:meth:`Sandboxes.wrap` turns a runtime's plan into one that runs under bubblewrap
(:mod:`fleet.sandbox.policy`); for a locked agent it first opens its doors — one per
loopback port in the URLs the agent was given, and its egress door to the forward proxy of
its allow-list, unless its egress is blocked (:mod:`fleet.sandbox.egress.locked`).

Each agent has a lane (:mod:`fleet.sandbox.lanes`): besides Fleetwarden's own places, its
sandbox hides every other agent's workdir (the caller names them: the roster's and the
ledger's), the config's ``workdirs`` directory whole (made at start: what is made in it
later stays hidden too), ``/root``, ``/home``, ``/etc/ssl/private`` and shows
``/etc/shadow``, ``/etc/gshadow`` and the ssh host keys as empty; what the agent must
still read under a hidden path is bound back (:mod:`fleet.sandbox.places`). When
Fleetwarden is root, the agent runs as a host uid of its own, to which its HOME, its
workdir and its door directory are handed (closed to every other user) before each launch.

Whatever the layout — the config, the state dir and the workdirs inside a directory the
agent's user cannot enter, named through symlinks, on filesystems of their own — the paths
go to bubblewrap where they really lie and as that user can have them mounted
(:mod:`fleet.sandbox.host.reach`); a layout no sandbox can serve is refused before bubblewrap
runs, naming the directory and the fix (:mod:`fleet.sandbox.host.layout_check`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, LaunchPlan
from fleet.names import AgentName
from fleet.sandbox.egress.doors import Served
from fleet.sandbox.egress.locked import EGRESS_DOOR, LockedDoors
from fleet.sandbox.egress.refusals import RefusalBook
from fleet.sandbox.host import cgroups
from fleet.sandbox.host.bwrap_probe import BWRAP, probe
from fleet.sandbox.host.layout_check import handover_problem
from fleet.sandbox.host.reach import Arranged, Walker, arrange
from fleet.sandbox.host.setup_hint import fix
from fleet.sandbox.host.uid_ranges import UidRange
from fleet.sandbox.lanes import BLOCK, RLIMITS, Lanes, enforcement, hand_over_lane
from fleet.sandbox.places import SYSTEM_HIDDEN, needed_paths, real, secret_files
from fleet.sandbox.policy import EGRESS_PORT, Door, Layout, bwrap_argv

log = logging.getLogger(__name__)

NONE = "none"
LOCKED = "locked"
_GROUP_TRIES = 40  # times 50 ms: how long an ended run's control group may take to empty


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """Where sandboxes come from and what they hide."""

    state_dir: Path
    hidden: tuple[Path, ...]  # besides the state dir: the config's directory, the ledger's…
    python: str = sys.executable  # runs the forwarder inside (standard library only)
    bwrap: str = BWRAP
    workdirs: Path | None = None  # where the workdirs lie: hidden whole, made if missing
    uids: UidRange | None = None  # the agents' uids the config asks for (``agent_uids``)
    uid_count: int = BLOCK  # else how many this fleet holds on the host
    config: Path | None = None  # named in the host's register beside the state dir


def loopback_ports(urls: Iterable[str | None]) -> list[int]:
    """The ports of the 127.0.0.1 (or localhost) URLs among ``urls``, sorted, once each."""
    ports: set[int] = set()
    for url in urls:
        if not url:
            continue
        parts = urlsplit(url)
        if parts.hostname in ("127.0.0.1", "localhost") and parts.port is not None:
            ports.add(parts.port)
    return sorted(ports)


def proxy_env(port: int = EGRESS_PORT) -> dict[str, str]:
    """What points an agent's tools at the allow-list's forward proxy inside a sandbox."""
    url = f"http://127.0.0.1:{port}"
    env = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        env[name] = env[name.lower()] = url
    return env


class Sandboxes:
    """Wraps launches in sandboxes, and keeps the doors of locked agents."""

    def __init__(self, settings: SandboxSettings) -> None:
        self._settings = settings
        self._root = settings.state_dir / "sandbox"
        self._problem: str | None = None
        self._fix = ""
        self._lanes = Lanes(
            self._root,
            fleet=settings.state_dir,
            wanted=settings.uids,
            count=settings.uid_count,
            config=settings.config,
        )
        self._group = cgroups.group_of(settings.state_dir)
        self.doors = LockedDoors(self._root, self._lanes.uid_for)  # locked agents' doors

    @property
    def refusals(self) -> RefusalBook | None:
        """What counts and tells the egress refusals of the agents' forward proxies."""
        return self.doors.refusals

    @property
    def settings(self) -> SandboxSettings:
        """What every sandbox here hides besides a lane's own places."""
        return self._settings

    @property
    def lanes(self) -> Lanes:
        """Each lane's host uid (agents', and programs Fleetwarden confines), from the
        range this fleet holds on the host."""
        return self._lanes

    def reserve(self) -> None:
        """Hold this fleet's range of agent uids on the host (as root), before any is
        given: :class:`~fleet.sandbox.host.uid_register.UidRangeHeld`, naming the fleet
        that holds it and the fix, when another fleet here does."""
        self._lanes.reserve()

    @property
    def problem(self) -> str | None:
        """Why sandboxed agents cannot start here (``None``: they can)."""
        return self._problem

    @property
    def fix(self) -> str:
        """What lets sandboxed agents start here, when :attr:`problem` says they cannot:
        the exact command that installs bubblewrap on this host, or the settings it needs."""
        return self._fix

    async def start(self, refusals: RefusalBook | None = None) -> str | None:
        """Probe bubblewrap once; return (and keep) the problem, if any. ``refusals``
        counts and tells what the agents' forward proxies refuse."""
        self.doors.refusals = refusals
        if self._settings.workdirs is not None:
            try:
                self._settings.workdirs.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:  # then a launch says what is missing
                log.warning("cannot make the workdirs' directory: %s", exc)
        held = await asyncio.to_thread(self._lanes.reserve)
        self._problem = await probe(self._settings.bwrap, None if held is None else held.first)
        if self._problem is not None:
            installed = shutil.which(self._settings.bwrap) is not None
            self._fix = fix(installed, shutil.which, root=os.geteuid() == 0)
            # The app says it once where operators read (a notice); the log keeps it.
            log.info("agents cannot be sandboxed: %s; to fix: %s", self._problem, self._fix)
        for line in self.enforced():
            log.info("sandbox lanes: %s", line)
        return self._problem

    def enforced(self) -> list[str]:
        """What keeps agents apart on this host, in words (logged at start)."""
        return enforcement(self._lanes).lines()

    async def stop(self) -> None:
        """Close every door and let this fleet's uid range go; the agents keep running."""
        await self.doors.close_all()
        self._lanes.release()
        if self.refusals is not None:
            await self.refusals.stop()

    # -- launches ----------------------------------------------------------------------

    async def wrap(
        self,
        spec: AgentSpec,
        plan: LaunchPlan,
        home: Path,
        urls: Iterable[str | None],
        others: Iterable[Path] = (),
    ) -> LaunchPlan:
        """``plan`` run in ``spec``'s sandbox; ``urls`` are those the agent was given,
        ``others`` the workdirs of the other agents, which it must not see."""
        if spec.sandbox == NONE:
            log.warning("agent %s runs without a sandbox (sandbox: none)", spec.name)
            return plan
        if self._problem is not None:
            raise LaunchFailed(
                f"{spec.name} cannot start sandboxed: {self._problem}. To fix: {self._fix}"
            )
        hidden = (self._settings.state_dir, *self._settings.hidden)
        if self._settings.workdirs is not None:  # whole: what is made in it later too
            if not self._settings.workdirs.is_dir():
                raise LaunchFailed(
                    f"{spec.name} cannot start sandboxed: the config's `workdirs:` "
                    f"{self._settings.workdirs} is no directory; make it (mkdir -m 700)"
                )
            hidden += (self._settings.workdirs,)
        workdir = real(plan.cwd)
        exposed = next((h for h in hidden if real(h).is_relative_to(workdir)), None)
        if exposed is not None:
            raise LaunchFailed(
                f"{spec.name} cannot start: its workdir {plan.cwd} holds {exposed}, which no "
                "agent may see; give it a directory of its own"
            )
        others = tuple(others)
        uid = await self._lane(spec, plan.cwd, home, others)
        lane_hidden = tuple(
            p for p in (*SYSTEM_HIDDEN, *others) if p.exists() and real(p) != workdir
        )
        hidden = (*hidden, *lane_hidden)
        agents = (self._settings.state_dir, *others)  # where agents write, this one aside
        if self._settings.workdirs is not None:
            agents += (self._settings.workdirs,)
        placed = await self._arrange(spec, plan, home, hidden, uid, agents)
        env = dict(plan.env)
        doors: tuple[Door, ...] = ()
        locked = spec.egress == LOCKED
        if locked:
            ports = loopback_ports(urls)
            await self.doors.launching(spec, ports)
            doors = tuple(Door(port, f"tcp-{port}.sock") for port in ports)
            if spec.egress_allow:
                doors += (Door(EGRESS_PORT, EGRESS_DOOR),)
                env.update(proxy_env())
        workdir, home = placed.own
        layout = Layout(
            workdir=workdir,
            home=home,
            hidden=placed.hidden,
            needed=placed.needed,
            locked=locked,
            door_dir=self.doors.door_dir(spec.name) if locked else None,
            doors=doors,
            uid=os.getuid() if uid is None else uid,
            masked=secret_files(),
            aliases=placed.aliases,
            workdir_writable=not spec.workdir_read_only,
        )
        argv = bwrap_argv(
            layout, plan.argv, bwrap=self._settings.bwrap, python=self._settings.python
        )
        limits = tuple(f"{name}={value}" for name, value in RLIMITS)
        try:
            caps = cgroups.prepare(spec.name, group=self._group)
        except OSError as exc:  # the host said it allows caps; run, but say so
            log.warning("agent %s runs without cgroup caps: %s", spec.name, exc)
            caps = None
        groups = tuple(str(d) for d in caps.dirs) if caps is not None else ()
        return replace(
            plan,
            argv=tuple(argv),
            env=env,
            sandboxed=True,
            run_as=uid,
            rlimits=limits,
            cgroups=groups,
        )

    async def _arrange(
        self,
        spec: AgentSpec,
        plan: LaunchPlan,
        home: Path,
        hidden: tuple[Path, ...],
        uid: int | None,
        agents: tuple[Path, ...],
    ) -> Arranged:
        """The sandbox's paths where bubblewrap, run as the agent's user, can mount them
        (:mod:`fleet.sandbox.host.reach`); a layout no sandbox can be built for is refused with
        the directory and the fix."""
        python = self._settings.python
        try:  # both read the file system: off the event loop
            needed = await asyncio.to_thread(
                needed_paths, plan, home, hidden, python=python, agents=agents
            )
            placed = await asyncio.to_thread(
                arrange, hidden, (plan.cwd, home), needed, Walker.of(uid)
            )
        except OSError as exc:
            raise LaunchFailed(f"{spec.name} cannot start sandboxed: {exc.strerror}") from None
        if placed.closed:
            shown = ", ".join(str(p) for p in placed.closed)
            log.info("sandbox of %s hides %s whole: its user cannot enter it", spec.name, shown)
        return placed

    async def _lane(
        self, spec: AgentSpec, workdir: Path, home: Path, others: tuple[Path, ...]
    ) -> int | None:
        """``spec``'s own host uid, its HOME and workdir handed to it (``None``: agents
        share Fleetwarden's uid, nothing to hand over)."""
        try:
            uid = self._lanes.uid_for(spec.name)
            if uid is None:
                return None
            if workdir in others:
                log.warning("agent %s shares its workdir %s with another", spec.name, workdir)
        except OSError as exc:
            raise LaunchFailed(f"{spec.name} cannot start: {exc}") from exc
        try:
            await asyncio.to_thread(hand_over_lane, home, workdir, uid)
        except ValueError as exc:
            raise LaunchFailed(f"{spec.name} cannot start: {exc}") from exc
        except OSError as exc:  # say why its filesystem refuses, where that is known
            why = await asyncio.to_thread(handover_problem, workdir)
            raise LaunchFailed(f"{spec.name} cannot start sandboxed: {why or exc}") from exc
        return uid

    async def open_remote_egress(self, spec: AgentSpec) -> Path | None:
        """The door here that serves the allow-list's forward proxy to ``spec``'s agent on
        another host (:meth:`LockedDoors.open_remote_egress`); ``None`` when it has no
        allow-list."""
        if spec.sandbox == NONE or spec.egress != LOCKED or not spec.egress_allow:
            return None
        return await self.doors.open_remote_egress(spec)

    def egress_door(self, name: str) -> Path:
        """Where ``name``'s allow-list door is here (open while its run is)."""
        return self.doors.egress_door(name)

    async def reattach(self, spec: AgentSpec) -> None:
        """Open a running locked agent's doors again (after Fleetwarden restarted)."""
        if spec.sandbox == NONE or spec.egress != LOCKED:
            return
        await self.doors.reattach(spec)

    async def release(self, name: AgentName) -> None:
        """Close the doors of ``name``'s run, which has ended, and remove its groups."""
        await self.doors.close(name)
        for _ in range(_GROUP_TRIES):  # its last processes may still be being killed
            if not cgroups.remove(name, group=self._group):
                break
            await asyncio.sleep(0.05)

    def serve_in_place(self, port: int, server: Served) -> None:
        """:meth:`LockedDoors.serve_in_place`."""
        self.doors.serve_in_place(port, server)

    # -- egress block (:class:`LockedDoors`) -------------------------------------------

    def blocked(self, name: str) -> bool:
        return self.doors.blocked(name)

    async def block(self, name: AgentName) -> bool:
        """Cut ``name``'s allow-list now and for its next runs; whether a door was open."""
        return await self.doors.block(name)

    async def unblock(self, name: AgentName) -> bool:
        """Let ``name`` reach its allow-list again; whether a door was opened."""
        return await self.doors.unblock(name)
