"""The fleet's hosts while the orchestrator runs: one :class:`HostLink` per ``hosts:``
entry, kept up from start to stop, and what each host was last found to have.

A host that cannot be reached at start does not stop the orchestrator: its link keeps
trying (backing off, at most once a second) and :meth:`Hosts.views` says which host and
why. Each time a link comes up the host is probed (load, disk, CLIs), and again every
:data:`PROBE_EVERY` seconds while it stays up (:meth:`Hosts.probe_up`, a scheduler job), so
``hosts`` shows facts at most that old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Final

from fleet.errors import LaunchFailed
from fleet.hosts.errors import HostError, ssh_says
from fleet.hosts.lanes import HostLanes, read_uids
from fleet.hosts.link import ssh as asyncssh
from fleet.hosts.link.connection import HostLink, LinkState, LinkStatus
from fleet.hosts.place import HostPlace, prepare
from fleet.hosts.probe import HostFacts, probe
from fleet.hosts.sandbox import (
    EgressDoor,
    Forward,
    asked_dirs,
    forget_doors,
    open_doors,
    path_needs,
    real_paths,
    reopen_doors,
    wrap,
)
from fleet.hosts.schema import HostEntry, HostName
from fleet.model import AgentSpec, LaunchPlan
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

PROBE_EVERY: Final = 60.0


@dataclass(frozen=True, slots=True)
class HostView:
    """One host as ``hosts`` shows it: its link now, and the facts of its last probe."""

    entry: HostEntry
    status: LinkStatus
    facts: HostFacts | None
    probed_at: datetime | None
    probe_error: str | None


class Hosts:
    """Every configured host's link and facts."""

    def __init__(
        self,
        entries: Sequence[HostEntry],
        *,
        env: Mapping[str, str],
        clock: Clock,
        bundled: Sequence[Path] = (),
        egress_door: EgressDoor | None = None,
    ) -> None:
        self._clock = clock
        self._egress_door = egress_door  # where an agent's allow-list door is here
        self._bundled = tuple(bundled)
        self._targets: dict[str, int] = {}
        self._places: dict[HostName, HostPlace] = {}
        # host → agent → the listeners of its doors there (a locked sandbox's)
        self._doors: dict[HostName, dict[str, list[Forward]]] = {}
        self._links = {
            entry.host_name: HostLink(
                entry,
                env=env,
                clock=clock,
                on_change=self._changed,
                setup=partial(self._setup, entry),
            )
            for entry in entries
        }
        self._facts: dict[HostName, tuple[HostFacts | None, datetime | None, str | None]] = {}
        self._probing: dict[HostName, asyncio.Task[None]] = {}
        self._started = False
        self._said: dict[HostName, str | None] = {}  # the down reason last logged
        self._lanes = HostLanes()  # the agents' uids where a host's login is root

    def __len__(self) -> int:
        return len(self._links)

    def link(self, name: str) -> HostLink | None:
        return self._links.get(HostName(name))

    def names(self) -> list[str]:
        return list(self._links)

    def entry(self, name: str) -> HostEntry | None:
        link = self._links.get(HostName(name))
        return link.entry if link is not None else None

    def place(self, name: str) -> HostPlace | None:
        """The host's layout while its link is up (``None`` while it is not)."""
        link = self._links.get(HostName(name))
        if link is None or link.state is not LinkState.CONNECTED:
            return None
        return self._places.get(HostName(name))

    def facts(self, name: str) -> HostFacts | None:
        """What the host's last probe found."""
        return self._facts.get(HostName(name), (None, None, None))[0]

    async def start(self, targets: Mapping[str, int] | None = None) -> None:
        """Start every link; returns at once, whether or not the hosts answer. ``targets``
        (listener name → loopback port) are forwarded to from each host's loopback."""
        self._targets = dict(targets or {})
        self._started = True
        for link in self._links.values():
            await link.start()
            log.info("host %s: connecting to %s", link.name, link.entry.target)

    async def stop(self) -> None:
        """Stop probing and close every link."""
        tasks = list(self._probing.values())
        self._probing.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for link in self._links.values():
            await link.stop()

    def views(self) -> list[HostView]:
        """Every host, in config order, with its link's state and its last facts."""
        views = []
        for name, link in self._links.items():
            facts, at, error = self._facts.get(name, (None, None, None))
            views.append(HostView(link.entry, link.status(), facts, at, error))
        return views

    def _changed(self, status: LinkStatus) -> None:
        if status.state is LinkState.CONNECTED and self._started:
            running = self._probing.get(status.host)
            if running is None or running.done():
                self._probing[status.host] = asyncio.create_task(
                    self._probe(status.host), name=f"probe-{status.host}"
                )
        elif (
            status.state is LinkState.DOWN
            and status.error
            # Once per spell and reason: the link retries every second or more while down.
            and self._said.get(status.host) != status.error
        ):
            log.warning("host %s unreachable (retrying): %s", status.host, status.error)
        self._said[status.host] = status.error if status.state is LinkState.DOWN else None

    async def _setup(self, entry: HostEntry, conn: asyncssh.SSHClientConnection) -> None:
        place = await prepare(conn, entry, bundled=self._bundled, targets=self._targets)
        async with conn.start_sftp_client() as sftp:  # running locked agents' doors
            owners = await read_uids(sftp, place) if place.root else None
            self._doors[entry.host_name] = await reopen_doors(
                conn, sftp, place, self._egress_door, owners
            )
        self._places[entry.host_name] = place

    # -- sandboxes on hosts ---------------------------------------------------------------

    async def sandbox(
        self, spec: AgentSpec, plan: LaunchPlan, urls: Iterable[str | None], others: Iterable[Path]
    ) -> LaunchPlan:
        """``plan`` in ``spec``'s sandbox on its host (:mod:`fleet.hosts.sandbox`), its
        doors open."""
        link = self._links.get(HostName(spec.host))
        place = self.place(spec.host)
        if link is None or place is None:
            raise LaunchFailed(f"{spec.name} cannot start: host {spec.host} cannot be reached")
        others = list(others)
        try:  # where the workdirs and what every sandbox hides really lie there
            real = await real_paths(link, [str(plan.cwd), *place.hidden_whole, *map(str, others)])
            hidden = [real.get(p, p) for p in place.hidden_whole]
            asked = asked_dirs(plan.env.get("PATH", ""), hidden)
            writable = [place.state_dir, place.workdirs, *map(str, others), str(plan.cwd)]
            untrusted = [real.get(p, p) for p in writable if p is not None]
            needs = await path_needs(link, asked, untrusted)
            uid = await self._lanes.uid_for(link, place, spec.name) if place.root else None
        except HostError as exc:
            raise LaunchFailed(f"{spec.name} cannot start on host {spec.host}: {exc}") from None
        facts = self.facts(spec.host)
        wrapped, doors = wrap(spec, plan, place, urls, others, facts, real, uid, needs)
        if doors:
            try:
                sftp = await link.sftp()
                opened = await open_doors(
                    link.connection(), sftp, place, spec.name, doors, self._egress_door, uid
                )
            except (HostError, OSError, asyncssh.Error) as exc:
                why = str(exc) if isinstance(exc, HostError) else ssh_says(exc)
                raise LaunchFailed(
                    f"{spec.name} cannot start: its doors on host {spec.host} did not open: {why}"
                ) from None
            self._doors.setdefault(HostName(spec.host), {})[spec.name] = opened
        return wrapped

    async def release(self, host: str, agent: str) -> None:
        """Close ``agent``'s doors on ``host`` (its run ended) and forget them there."""
        listeners = self._doors.get(HostName(host), {}).pop(agent, [])
        for listener in listeners:
            listener.close()
        link, place = self._links.get(HostName(host)), self.place(host)
        if listeners and link is not None and place is not None:
            with contextlib.suppress(HostError, OSError, asyncssh.Error):
                await forget_doors(await link.sftp(), place, agent)

    async def probe_up(self) -> None:
        """One probe of every host whose link is up — a scheduler job every
        :data:`PROBE_EVERY` seconds; a host whose probe at its link's coming up still runs
        is left to it."""
        names = [
            name
            for name, link in self._links.items()
            if link.state is LinkState.CONNECTED
            and ((running := self._probing.get(name)) is None or running.done())
        ]
        await asyncio.gather(*(self._probe(name) for name in names))

    async def _probe(self, name: HostName) -> None:
        link = self._links[name]
        try:
            facts = await probe(link, link.entry.state_dir, path=link.entry.path, host=name)
        except HostError as exc:
            facts_before, at_before, _ = self._facts.get(name, (None, None, None))
            self._facts[name] = (facts_before, at_before, str(exc))
            log.warning("host %s: probe failed: %s", name, exc)
        else:
            self._facts[name] = (facts, self._clock.now(), None)
