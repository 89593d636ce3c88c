"""Where a launch runs and what confines it: the host it is placed on (``host: any`` and
``max_agents``, :mod:`fleet.runs.launch.placement`), the sandbox around its plan
(bubblewrap here, or its host's layout there, with the doors each needs), and what that
sandbox held, released when the run ends or the launch fails.

:class:`LaunchSite` is :class:`fleet.runs.keeper.RunKeeper`'s: it decides and wraps, the
keeper records and launches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from fleet.backends.base import Backend, backend_key
from fleet.errors import LaunchFailed
from fleet.hosts.schema import ANY_HOST, LOCAL_HOST
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.model import AgentSpec, LaunchPlan
from fleet.names import AgentName
from fleet.runs.launch.context import RunContexts
from fleet.runs.launch.placement import place
from fleet.sandbox.service import NONE, Sandboxes


class LaunchSite:
    """Placement and confinement of launches, over the ledger's agents and the roster's
    (``roster``: the config's agents as they are now, after any reload)."""

    def __init__(
        self,
        agents: AgentsStore,
        contexts: RunContexts,
        backends: Mapping[str, Backend],
        sandboxes: Sandboxes | None,
        roster: Callable[[], Iterable[AgentSpec]] = tuple,
    ) -> None:
        self._agents = agents
        self._roster = roster
        self._contexts = contexts
        self._backends = backends
        self.sandboxes = sandboxes

    async def place(self, spec: AgentSpec) -> AgentSpec:
        """``spec`` on the host it will run on (one with room, for ``host: any``); a host
        the config does not have is refused."""
        hosts = self._contexts.hosts
        if spec.host != LOCAL_HOST and hosts is not None:
            spec = place(spec, hosts, await self._live_by_host(spec.name))
        if spec.host != LOCAL_HOST and (hosts is None or backend_key(spec) not in self._backends):
            raise LaunchFailed(
                f"{spec.name} cannot start: no host {spec.host!r} in the config's hosts "
                "(`hosts` lists them)"
            )
        return spec

    async def confine(self, spec: AgentSpec, plan: LaunchPlan, home: Path) -> LaunchPlan:
        """``plan`` inside ``spec``'s sandbox, with its doors opened (unchanged with
        ``sandbox: none``, or without sandboxes)."""
        hosts = self._contexts.hosts
        if spec.host != LOCAL_HOST:
            if hosts is None or spec.sandbox == NONE:
                return plan
            if self.sandboxes is not None:  # its allow-list's door is here
                await self.sandboxes.open_remote_egress(spec)
            others = await self._other_workdirs(spec)
            return await hosts.sandbox(spec, plan, self._contexts.remote_urls(spec), others)
        if self.sandboxes is None:
            return plan
        others = await self._other_workdirs(spec)
        return await self.sandboxes.wrap(spec, plan, home, self._contexts.urls_of(spec), others)

    async def release(self, name: AgentName, host: str) -> None:
        """What ``name``'s sandbox held open (its doors), here or on its host."""
        if host != LOCAL_HOST and self._contexts.hosts is not None:
            await self._contexts.hosts.release(host, name)
        if self.sandboxes is not None:
            await self.sandboxes.release(name)

    async def _other_workdirs(self, spec: AgentSpec) -> list[Path]:
        """The workdirs of every other agent on ``spec``'s machine: those the ledger knows
        (agents that ran, spawned ones) and, here, those the roster names, whether or not
        their agents ever ran — its sandbox hides them, whichever starts first. Default
        workdirs lie in the hidden state dir."""
        found = [
            record.workdir
            for record in await self._agents.list_agents()
            if record.name != spec.name and record.workdir is not None and record.host == spec.host
        ]
        if spec.host == LOCAL_HOST:  # `host: any` may land here too
            found += [
                other.workdir
                for other in self._roster()
                if other.name != spec.name
                and other.workdir is not None
                and other.host in (LOCAL_HOST, ANY_HOST)
            ]
        return list(dict.fromkeys(found))

    async def _live_by_host(self, name: AgentName) -> dict[str, int]:
        """How many agents run on each host now, ``name`` not counted."""
        live: dict[str, int] = {}
        for record in await self._agents.list_agents():
            if record.name != name and record.state.is_live:
                live[record.host] = live.get(record.host, 0) + 1
        return live
