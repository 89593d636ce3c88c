"""Where an agent runs: ``host: NAME`` checked for room under its ``max_agents``, and
``host: any`` made the host with the most room under ``max_agents`` that is up and has the
agent's CLI. Pure but for what the hosts last said."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from fleet.errors import LaunchFailed
from fleet.hosts.place import HostPlace
from fleet.hosts.probe import HostFacts
from fleet.hosts.schema import ANY_HOST, HostEntry
from fleet.model import AgentSpec

CLI_RUNTIMES = frozenset({"claude", "codex", "pi", "opencode"})
"""Runtimes whose CLI a host must have (named as the runtime); others need only Python."""


class HostsView(Protocol):
    """What placing needs of the hosts (:class:`fleet.hosts.service.Hosts`)."""

    def names(self) -> list[str]: ...

    def entry(self, name: str) -> HostEntry | None: ...

    def place(self, name: str) -> HostPlace | None: ...

    def facts(self, name: str) -> HostFacts | None: ...


def place(spec: AgentSpec, hosts: HostsView, live: Mapping[str, int]) -> AgentSpec:
    """``spec`` on the host it runs on; ``live``: each host's agents running now (this
    one's not counted). Raises :class:`LaunchFailed` naming why none will do."""
    if spec.host == ANY_HOST:
        return _any(spec, hosts, live)
    entry = hosts.entry(spec.host)
    if entry is not None and live.get(spec.host, 0) >= entry.max_agents:
        raise LaunchFailed(
            f"{spec.name} cannot start: host {spec.host} is full ({live.get(spec.host, 0)} "
            f"of its max_agents {entry.max_agents} running) — stop one there, raise its "
            "max_agents, or run it elsewhere (`spawn NAME --host H`)"
        )
    return spec


def _any(spec: AgentSpec, hosts: HostsView, live: Mapping[str, int]) -> AgentSpec:
    room: list[tuple[int, str]] = []
    why: list[str] = []
    for name in hosts.names():
        entry = hosts.entry(name)
        if entry is None:
            continue
        if hosts.place(name) is None:
            why.append(f"{name} cannot be reached")
            continue
        facts = hosts.facts(name)
        if spec.runtime in CLI_RUNTIMES and (facts is None or not facts.has(spec.runtime)):
            why.append(f"{name} has no {spec.runtime}")
            continue
        free = entry.max_agents - live.get(name, 0)
        if free <= 0:
            why.append(f"{name} is full")
            continue
        room.append((free, name))
    if not room:
        reasons = "; ".join(why) or "the config lists no hosts"
        raise LaunchFailed(f"{spec.name} cannot start on any host: {reasons}")
    chosen = min(room, key=lambda pair: (-pair[0], pair[1]))[1]  # most room, then by name
    return replace(spec, host=chosen)
