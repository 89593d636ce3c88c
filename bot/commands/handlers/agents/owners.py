"""Whose an agent is, in chat's words: the forge issue an agent works on (a chat run
would take over its branch and session) and its live branch — what the admission's
ownership stage (:mod:`fleet.supervisor.admission.stages.ownership`) asks, and what
``restart`` and ``send`` say of an agent on an issue."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Protocol

from bot.render import forge as render_forge
from bot.text.agent_text import said
from fleet.errors import FleetError
from fleet.forge.facts import ForgeRuns
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState
from fleet.ledger.records.lines import LineRecord
from fleet.ledger.records.rows import AgentRecord
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.names import agent_name
from fleet.supervisor.admission.request import LaunchRequest


class LiveLines(Protocol):
    """The repositories, as far as an agent's live line."""

    async def line_of(self, agent: str) -> LineRecord | None: ...


class AgentRecords(Protocol):
    """The agents' records, as far as one agent's (the ledger's agents store)."""

    async def get_agent(self, name: str) -> AgentRecord | None: ...


class Launching(LiveLines, Protocol):
    """The repositories, as far as an agent's live line and the agents being launched."""

    @property
    def launching(self) -> AbstractSet[str]:
        """The agents between their line's preparing and their run's start."""
        ...


class ChatOwners:
    """The ownership stage's :class:`~fleet.supervisor.admission.stages.ownership.Owners`
    over the agents' records, the live forge runs (``None``: no forges) and the repositories
    (``None``: none configured); ``launching``: the agents the repositories are launching
    (a forge run's agent among them is not free for it)."""

    def __init__(
        self,
        agents: AgentRecords,
        forge_runs: ForgeRuns | None,
        repos: LiveLines | None,
        launching: AbstractSet[str] = frozenset(),
    ) -> None:
        self._agents, self._forge_runs, self._repos = agents, forge_runs, repos
        self._launching = launching

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
        return None if record is None else taken_words(agent, record, live)

    async def branch_of(self, agent: str) -> str | None:
        line = await self._repos.line_of(agent) if self._repos is not None else None
        return said(line.branch, 80) if line is not None else None

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


def taken_words(name: str, record: ForgeRunRecord, live: bool) -> str:
    """Why a chat run (or restart) of ``name``, working on ``record``'s issue, would take
    over its branch and its session, and what goes on instead (``live``: its session runs)."""
    where = f"{name} works on {render_forge.links(record)} ({record.state})"
    if live:
        return (
            f"{where}: `send {name} TEXT` continues that session; it ends when its pull "
            "request closes"
        )
    return f"{where}, and is not running now: {goes_on(record)}"


def goes_on(record: ForgeRunRecord) -> str:
    """What gives an agent working on a forge issue its next run once its session ended."""
    where = "its pull request" if record.pull is not None else "the issue"
    return (
        f"a review or comment on {where} starts its next run on its branch; it ends when "
        "its pull request closes"
    )
