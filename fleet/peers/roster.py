"""The peer roster: who each agent's peers are, where they run and whether they are live —
told at launch (the comms block before its prompt, ``$HOME/.fleetwarden/PEERS.md``), by
``fw-msg peers``, and whether one agent may message another.

:class:`PeerRoster` reads the fleet's roster as it is now (a reload's ``talks_to`` and
``role`` apply at once) and the agents the ledger holds (their state, the host a run was
placed on, the spec of an agent the roster no longer names). The ledger's view is read
again at each launch and each fleet event; between them the sync queries answer from it.
When a peer starts or ends, the ``PEERS.md`` of each live local agent it concerns is
written again where its text changed (a remote agent's is written at its launch;
``fw-msg peers`` is live there).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from fleet.events import QUIET, FleetEvent
from fleet.hosts.schema import LOCAL_HOST
from fleet.lane_files import lane_dir, write_lane_file
from fleet.ledger.records.rows import AgentRecord
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.peers.telling import Circle, Member, comms_block, peers_words
from fleet.runs.launch.preamble import PEERS_FILE
from fleet.runs.layout import AgentPaths

log = logging.getLogger(__name__)

ANY_HOST = "any"
"""The placement ``host: any``: which host is known once a run is placed."""


class AgentsOnRecord(Protocol):
    """The agents the ledger holds (:class:`~fleet.ledger.stores.running.agents.AgentsStore`)."""

    async def list_agents(self) -> list[AgentRecord]: ...


class PeerRoster:
    """Who each agent's peers are, and what it is told of them."""

    def __init__(
        self,
        *,
        roster: Callable[[], Iterable[AgentSpec]],
        agents: AgentsOnRecord,
        state_dir: Path,
        reviewers: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        """``roster``: the fleet's roster as it is now (``Fleet.roster``); ``agents``: the
        ledger's agents; ``state_dir``: where local agents' homes are; ``reviewers``: the
        agents a repository or a forge names as its ``review: {agent}`` now."""
        self._roster = roster
        self._agents = agents
        self._state_dir = state_dir
        self._reviewers = reviewers
        self._records: Mapping[str, AgentRecord] = MappingProxyType({})
        self._written: dict[str, str | None] = {}  # each local agent's PEERS.md, as last told
        self._lock = asyncio.Lock()

    # -- what an agent is told ----------------------------------------------------------

    def block(self, spec: AgentSpec) -> str | None:
        """``spec``'s comms block: given when it has peers, is someone's peer, has a
        ``role:`` or is a review agent; ``None`` otherwise."""
        circle = self._circle(spec)  # someone's peer: its peer, or one that may message it
        if not (circle.peers or circle.callers or spec.purpose or circle.reviewer):
            return None
        return comms_block(circle)

    def peers_text(self, agent: str) -> str:
        """What ``fw-msg peers`` prints for ``agent``: who it is, and its peers, live or not."""
        spec = self.spec_of(agent)
        if spec is None:
            return f"No agent is called {agent[:40]!r} here.\n"
        return peers_words(self._circle(spec))

    def may_talk(self, spec: AgentSpec, receiver: str) -> bool:
        """Whether ``spec``'s agent may message ``receiver``: one of its peers, not itself."""
        return receiver != spec.name and receiver in spec.talks_to

    def spec_of(self, agent: str) -> AgentSpec | None:
        """``agent``'s settings now: the roster's, else those the ledger holds."""
        for spec in self._roster():
            if spec.name == agent:
                return spec
        record = self._records.get(agent)
        return record.spec if record is not None else None

    # -- keeping up -----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the ledger's agents again: their state, host and spec."""
        records = await self._agents.list_agents()
        self._records = MappingProxyType({record.name: record for record in records})

    def involved(self, name: str) -> bool:
        """Whether agent ``name`` works with peers at all: it has some, is someone's, has a
        ``role:`` or reviews. The others — most of a large fleet — cost no ledger read at
        their launches and events."""
        roster = list(self._roster())
        spec = next((s for s in roster if s.name == name), None)
        if spec is not None and (spec.talks_to or spec.purpose):
            return True
        return name in self._reviewers() or any(name in other.talks_to for other in roster)

    async def preamble(self, spec: AgentSpec) -> str | None:
        """The comms block of ``spec`` about to launch, its peers' state read now (the
        :class:`~fleet.runs.launch.launch_kit.LaunchKit`'s ``preamble``; its launch writes it)."""
        if not (spec.talks_to or spec.purpose or self.involved(spec.name)):
            return None
        await self.refresh()
        block = self.block(spec)
        if spec.host == LOCAL_HOST:
            self._written[spec.name] = block
        return block

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A fleet listener: when an agent starts or ends (or stalls, or is given up on),
        the ``PEERS.md`` of each live local agent whose peers it is among, or who is among
        its, is written again where what it says has changed (a turn's end or a pause
        changes nothing in it)."""
        if event.kind in QUIET or not self.involved(event.agent):
            return
        await self.refresh()
        agent = self.spec_of(event.agent)
        if agent is None:
            return
        concerned = [
            spec
            for spec in self._live_local()
            if spec.name != agent.name
            and (agent.name in spec.talks_to or spec.name in agent.talks_to)
        ]
        await self._write(concerned)

    async def rewrite(self) -> int:
        """Write again the ``PEERS.md`` of every live local agent whose block has changed
        (after a roster reload changed who talks to whom); how many were written."""
        await self.refresh()
        return await self._write(self._live_local())

    # -- inside ---------------------------------------------------------------------------

    def _member(self, spec: AgentSpec) -> Member:
        record = self._records.get(spec.name)
        live = record is not None and record.state.is_live
        host, runtime = spec.host, spec.runtime
        if record is not None and (live or host == ANY_HOST):
            host = record.host  # where its run was placed
            runtime = record.runtime if live else runtime
        if host == ANY_HOST:
            host = "any host"
        return Member(spec.name, host, runtime, spec.purpose, spec.repo, live)

    def _circle(self, spec: AgentSpec) -> Circle:
        me = Member(spec.name, spec.host, spec.runtime, spec.purpose, spec.repo, True)
        if spec.host == ANY_HOST:  # not yet placed: where it ran last, if it did
            me = self._member(spec)
        peers = []
        for name in spec.talks_to:
            peer = self.spec_of(name)
            peers.append(
                self._member(peer)
                if peer is not None
                else Member(name, "unknown", "not in the roster")
            )
        callers = [
            self._member(other)
            for other in self._roster()
            if spec.name in other.talks_to
            and other.name not in spec.talks_to
            and other.name != spec.name
        ]
        return Circle(me, peers, callers, spec.name in self._reviewers())

    def _live_local(self) -> list[AgentSpec]:
        """The agents that run on this machine now, with their current settings."""
        found = []
        for record in self._records.values():
            if not record.state.is_live or record.host != LOCAL_HOST:
                continue
            spec = self.spec_of(record.name)
            if spec is not None:
                found.append(spec)
        return found

    async def _write(self, specs: Iterable[AgentSpec]) -> int:
        written = 0
        async with self._lock:  # two events at once: each file written whole, in turn
            for spec in specs:
                block = self.block(spec)
                if block is None or block == self._written.get(spec.name):
                    continue
                home = AgentPaths.of(self._state_dir, AgentName(spec.name)).home
                try:
                    await asyncio.to_thread(_write_peers_file, home, block)
                except OSError as exc:  # its next launch writes it; `fw-msg peers` is live
                    log.warning("could not write %s's %s: %s", spec.name, PEERS_FILE, exc)
                    continue
                self._written[spec.name] = block
                written += 1
        return written


def _write_peers_file(home: Path, text: str) -> None:
    """``text`` in ``home``'s :data:`PEERS_FILE`, through no symlink the agent left there;
    when Fleetwarden is root and the home is the agent's own user's (a lane), the file is
    handed to that user, as its launch hands the whole home."""
    if not home.is_dir():
        return  # never launched here: its launch writes it
    write_lane_file(home, PEERS_FILE, text)
    owner = os.stat(home).st_uid
    if os.geteuid() != 0 or owner == 0:
        return
    with lane_dir(home, PEERS_FILE.parent.parts) as dir_fd:
        os.fchown(dir_fd, owner, owner)
        os.chown(PEERS_FILE.name, owner, owner, dir_fd=dir_fd, follow_symlinks=False)
