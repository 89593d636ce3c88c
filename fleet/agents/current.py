"""The roster as it is now: the config's agents, replaced whole by a roster reload. Made
once, before the parts that read it — the run keeper (whose sandboxes hide every roster
agent's workdir), the launcher, the supervisor and the peer roster — so none of them reaches
it through another."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fleet.events import EventKind, FleetEvent
from fleet.mcp.config.rules import McpRules
from fleet.model import AgentSpec
from fleet.names import AgentName


class CurrentRoster:
    """The config's agents by name, as of the last load or reload, and what it allows a
    launch on MCP servers and skills (:attr:`mcp`, replaced with it)."""

    def __init__(
        self, roster: Mapping[AgentName, AgentSpec] | None = None, mcp: McpRules | None = None
    ) -> None:
        self._roster: dict[AgentName, AgentSpec] = dict(roster or {})
        self._left: dict[AgentName, AgentSpec] = {}
        self.mcp = mcp if mcp is not None else McpRules()

    def get(self, name: AgentName) -> AgentSpec | None:
        return self._roster.get(name)

    def left(self, name: AgentName) -> AgentSpec | None:
        """The spec ``name`` had when a reload took it out of the roster, while the run it
        had then goes on (:meth:`on_fleet_event` forgets it when that run ends: a later
        launch is an ad hoc agent's); ``None`` for an agent the roster names or never named."""
        return self._left.get(name)

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A fleet listener: an agent taken out of the roster whose run ended is no longer
        its spec's (its next launch, if any, is ad hoc)."""
        if event.kind is EventKind.ENDED:
            self._left.pop(event.agent, None)

    def __contains__(self, name: object) -> bool:
        return name in self._roster

    def values(self) -> Iterable[AgentSpec]:
        return self._roster.values()

    def specs(self) -> list[AgentSpec]:
        """The roster agents, by name."""
        return [self._roster[name] for name in sorted(self._roster)]

    def now(self) -> dict[AgentName, AgentSpec]:
        """The mapping itself, as it is now (a reload replaces it whole)."""
        return self._roster

    def replace(
        self, roster: Mapping[AgentName, AgentSpec], mcp: McpRules | None = None
    ) -> dict[AgentName, AgentSpec]:
        """Take ``roster`` (and ``mcp``, when given) from now on; the roster it replaces."""
        old, self._roster = self._roster, dict(roster)
        self._left.update((name, spec) for name, spec in old.items() if name not in roster)
        for name in roster:
            self._left.pop(name, None)
        if mcp is not None:
            self.mcp = mcp
        return old
