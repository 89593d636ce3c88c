"""The concurrency caps' slots: whether one more launch may start now under every cap
(:mod:`fleet.caps`), holding its slot from then until its launch returns so two
launches at once cannot both take the last one; else why not, the launch written to the
spawn queue (:mod:`fleet.ledger.stores.running.spawn_queue`) under the same lock when the caller
asks.

An agent counts as holding a slot while it is live, while an operation is under way on it
(:meth:`fleet.supervisor.fleet.Fleet.busy`), while its admitted launch has not returned,
and while the queue is starting it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Protocol

from fleet.accounts.book import AccountBook
from fleet.accounts.model import AccountError
from fleet.budgets.model import Groups
from fleet.caps import Caps, Occupant, blocked
from fleet.events import EventKind
from fleet.ledger import QueuedSpawn
from fleet.ledger.records.budgets import Scope
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.spawn_queue import SpawnQueueStore
from fleet.model import AgentSpec

FREEING = frozenset({EventKind.ENDED, EventKind.GAVE_UP})
"""The fleet events that free a slot: an agent ended, or was given up on."""


class Occupancy(Protocol):
    """What the slots read of the supervisor."""

    def busy(self) -> AbstractSet[str]:
        """The agents an operation is under way on."""
        ...

    def roster(self) -> Sequence[AgentSpec]:
        """The roster's agents."""
        ...


@dataclass(frozen=True, slots=True)
class Held:
    """A launch the caps hold: ``why``; ``entry``: its place in the queue when it was
    written there; ``already``: the agent was queued before (``entry`` is that one)."""

    why: str
    entry: QueuedSpawn | None = None
    already: bool = False


Enqueue = Callable[[str], Awaitable[QueuedSpawn]]
"""Write the held launch to the queue, given why it waits; its entry."""


class Slots:
    """The caps, the launches holding a slot, and the lock they are counted under."""

    def __init__(
        self,
        *,
        agents: AgentsStore,
        spawn_queue: SpawnQueueStore,
        fleet: Occupancy,
        caps: Caps,
        groups: Groups,
        accounts: AccountBook | None,
        default_runtime: str,
        default_account: str | None = None,
        host: str | None = None,
    ) -> None:
        self._agents = agents
        self._spawn_queue = spawn_queue
        self._fleet = fleet
        self.caps = caps
        self._groups = groups
        self._accounts = accounts
        self._default_runtime = default_runtime
        self._default_account = default_account
        self.host = host or socket.gethostname()
        self.lock = asyncio.Lock()
        self._reserved: dict[str, Occupant] = {}  # launches admitted, not yet returned
        self.starting: dict[str, int] = {}  # agent -> the queue entry being started
        self._freed: list[Callable[[], None]] = []  # told when a held slot is let go

    def listen_freed(self, listener: Callable[[], None]) -> None:
        """Tell ``listener`` each time a slot held for a launch is let go (the spawn queue
        looks for an entry to start)."""
        self._freed.append(listener)

    async def take(
        self,
        agent: str,
        runtime: str | None,
        account: str | None,
        enqueue: Enqueue | None,
        *,
        forge: bool = False,
    ) -> Held | None:
        """``None``: ``agent`` may launch now (a slot is reserved until :meth:`release`);
        else why not — queued already, or the full cap, written to the queue by
        ``enqueue`` when given. ``forge``: a forge run's launch, which only a forge run's
        entry answers for as "queued already" (an issue's place in the queue is not an
        operator's ``spawn``, nor the other way round)."""
        if not self.caps or agent in self.starting:
            return None  # no caps; or the queue's own start, admitted when it was picked
        async with self.lock:
            record = await self._agents.get_agent(agent)
            if record is not None and record.state.is_live:
                return None  # the launch only reports a running agent
            waiting = [
                e for e in await self.queue() if e.agent == agent and (e.origin == "forge") == forge
            ]
            if waiting:
                return Held(waiting[0].reason, waiting[0], already=True)
            candidate = await self.candidate(agent, runtime, account)
            why = blocked(candidate, await self.running(), self.caps)
            if why is None:
                self._reserved[agent] = candidate
                return None
            return Held(why, None if enqueue is None else await enqueue(why))

    def release(self, agent: str) -> None:
        """The launch admitted for ``agent`` has returned: its slot is the agent's now (or,
        if it failed, free again)."""
        if self._reserved.pop(agent, None) is not None:
            for listener in self._freed:
                listener()

    async def queue(self) -> list[QueuedSpawn]:
        """This host's queue, oldest first."""
        return await self._spawn_queue.queued_spawns(self.host)

    async def running(self) -> list[Occupant]:
        """The agents holding a slot: live ones, those an operation is under way on, and
        launches admitted or picked but not yet returned."""
        names: set[str] = {r.name for r in await self._agents.list_agents() if r.state.is_live}
        names |= self._fleet.busy() | set(self.starting)
        held = [self._reserved[n] for n in sorted(self._reserved)]
        return held + [self._occupant(n) for n in sorted(names - set(self._reserved))]

    def _occupant(self, agent: str) -> Occupant:
        pairs = self._accounts.accounts_of(agent) if self._accounts is not None else []
        via = [Scope("account", a) for _, a in pairs] + [Scope("provider", p) for p, _ in pairs]
        chain = tuple(str(s) for s in self._groups.chain(agent, via))
        return Occupant(agent, chain, frozenset(a for _, a in pairs))

    async def candidate(self, agent: str, runtime: str | None, account: str | None) -> Occupant:
        """``agent`` as its launch would run: on the accounts it would be given (a pool:
        any of its accounts), under the scopes those make."""
        spec = await self._spec(agent)
        runtime = runtime or (spec.runtime if spec is not None else self._default_runtime)
        same_cli = spec is not None and runtime == spec.runtime
        wanted = account or (spec.account if spec is not None and same_cli else None)
        choices: dict[str, Sequence[str]] = {}
        if self._accounts is not None:
            with contextlib.suppress(AccountError):  # the launch itself will say why
                found = self._accounts.accounts.choices(
                    runtime, wanted, fallback=self._default_account
                )
                choices = {p: tuple(a.name for a in members) for p, members in found.items()}
        fixed = sorted(names[0] for names in choices.values() if len(names) == 1)
        pooled = tuple(tuple(names) for names in choices.values() if len(names) > 1)
        via = [Scope("account", a) for a in fixed] + [Scope("provider", p) for p in choices]
        chain = tuple(str(s) for s in self._groups.chain(agent, via))
        return Occupant(agent, chain, frozenset(fixed), pooled)

    async def _spec(self, agent: str) -> AgentSpec | None:
        spec = next((s for s in self._fleet.roster() if s.name == agent), None)
        if spec is None:
            record = await self._agents.get_agent(agent)
            spec = record.spec if record is not None else None
        return spec
