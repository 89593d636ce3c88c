"""Whose an agent is, as facts: whether it runs, the forge issue it works on, its live
branch, and whether it is free for a forge run's launch. The ownership stage
(:mod:`fleet.supervisor.admission.stages.ownership`) asks these; how an issue and a branch
read in a refusal is the surface's (:class:`OwnershipWords`), handed in by whoever builds
the admission."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from typing import Protocol

from fleet.errors import FleetError
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState
from fleet.ledger.records.lines import LineRecord
from fleet.ledger.records.rows import AgentRecord
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.names import agent_name
from fleet.supervisor.admission.request import LaunchRequest

ForgeRuns = Callable[[str | None], Awaitable[list[ForgeRunRecord]]]
"""The live forge runs (of one agent; of all: None): what the ownership stage asks, and
what ``ps``, ``runs`` and the spawn queue show."""


class LiveLines(Protocol):
    """The repositories, as far as an agent's live line."""

    async def line_of(self, agent: str) -> LineRecord | None: ...


class AgentRecords(Protocol):
    """The agents' records, as far as one agent's (the ledger's agents store)."""

    async def get_agent(self, name: str) -> AgentRecord | None: ...


class OwnershipWords(Protocol):
    """How a refusal names what owns an agent, in its surface's words (chat's links and
    escaping)."""

    def taken(self, agent: str, record: ForgeRunRecord, live: bool) -> str:
        """Why a chat run of ``agent``, working on ``record``'s issue, would take over its
        branch and session, and what goes on instead (``live``: its session runs)."""
        ...

    def branch(self, branch: str) -> str:
        """A branch's name, as the surface shows it."""
        ...


class AgentOwners:
    """The ownership stage's :class:`~fleet.supervisor.admission.stages.ownership.Owners`
    over the agents' records, the live forge runs (``None``: no forges) and the repositories
    (``None``: none configured); ``launching``: the agents the repositories are launching
    (a forge run's agent among them is not free for it)."""

    def __init__(
        self,
        agents: AgentRecords,
        forge_runs: ForgeRuns | None,
        repos: LiveLines | None,
        words: OwnershipWords,
        launching: AbstractSet[str] = frozenset(),
    ) -> None:
        self._agents, self._forge_runs, self._repos = agents, forge_runs, repos
        self._words, self._launching = words, launching

    async def live(self, agent: str) -> bool:
        record = await self._record(agent)
        return record is not None and record.state.is_live

    async def _record(self, agent: str) -> AgentRecord | None:
        """``agent``'s record (``None``: not known, or not a name an agent can have)."""
        try:
            return await self._agents.get_agent(agent_name(agent))
        except FleetError:
            return None

    async def on_an_issue(self, agent: str, live: bool) -> str | None:
        record = await on_an_issue(self._forge_runs, agent)
        return None if record is None else self._words.taken(agent, record, live)

    async def branch_of(self, agent: str) -> str | None:
        line = await self._repos.line_of(agent) if self._repos is not None else None
        return self._words.branch(line.branch) if line is not None else None

    async def not_free(self, request: LaunchRequest) -> str | None:
        agent = request.agent
        if agent in self._launching:
            return f"{agent} is starting another run"
        record = await self._record(agent)  # not known: its launch says so
        state = None if record is None else record.state
        if state is not None and state.is_live:
            return f"{agent} is {state.value} on other work"
        issue = request.issue
        if issue is None or self._forge_runs is None:  # a next run on its own run's line
            return None
        runs = await self._forge_runs(agent)
        working = [r for r in runs if ForgeRunState(r.state) is not ForgeRunState.QUEUED]
        other = working[-1] if working else None  # the newest it works on
        if other is not None and (issue.number != other.issue or
                                  issue.slug.lower() != str(other.slug).lower()):  # fmt: skip
            return f"{agent} works on {other.slug}#{other.issue} until its PR closes"
        return None


def stored_runs(forge: ForgeStore) -> ForgeRuns:
    """The live forge runs (of an agent) as the forge store keeps them."""

    async def runs(agent: str | None) -> list[ForgeRunRecord]:
        return await forge.forge_runs(agent=agent)

    return runs


async def on_an_issue(forge_runs: ForgeRuns | None, name: str) -> ForgeRunRecord | None:
    """The forge run ``name`` works on (on its branch already), if any."""
    if forge_runs is None:
        return None
    for record in await forge_runs(name):
        if ForgeRunState(record.state) is not ForgeRunState.QUEUED:  # not on its branch yet
            return record
    return None
