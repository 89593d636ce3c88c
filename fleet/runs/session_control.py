"""An operator's hand on a running agent's session: ``interrupt`` its turn, change its
``permissions`` mode. The supervisor's :meth:`~fleet.supervisor.fleet.Fleet.interrupt` and
:meth:`~fleet.supervisor.fleet.Fleet.set_permissions` are these, under the agent's lock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from fleet.errors import AgentNotRunning
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.model import AgentSpec, PermissionMode
from fleet.names import AgentName
from fleet.runs.keeper import RunKeeper
from fleet.sessions.live import LiveSessions


class SessionControl:
    """Interrupts and mode changes of the fleet's agents."""

    def __init__(
        self,
        agents: AgentsStore,
        sessions: LiveSessions,
        runs: RunKeeper,
        roster: Callable[[], dict[AgentName, AgentSpec]],
    ) -> None:
        self._agents = agents
        self._sessions = sessions
        self._runs = runs
        self._roster = roster

    async def interrupt(self, name: str, by: str) -> str:
        """End ``name``'s turn in progress and keep the agent; what happened, in words.
        :class:`AgentNotRunning` when it has no live session to interrupt."""
        record = await self._runs.record(name)
        async with self._runs.lock(record.name):
            if self._sessions.driver(record.name) is None:
                raise AgentNotRunning(
                    f"{record.name} has no live session to interrupt ({record.state.value}); "
                    f"`stop {record.name}` ends it instead"
                )
            if not await self._sessions.interrupt(record.name):
                return f"{record.name} is not working on a turn: nothing to interrupt"
        return f"{record.name}: its turn is interrupted (by {by}); the agent waits for `send`"

    async def set_permissions(self, name: str, mode: PermissionMode, by: str) -> str:
        """Give ``name`` mode ``mode``: kept on its spec for its next run (and on its roster
        entry until the roster is reloaded), and changed in its running session where its
        CLI can. What was done, in words."""
        record = await self._runs.record(name)
        async with self._runs.lock(record.name):
            record = await self._runs.record(name)
            roster = self._roster()
            spec = replace(roster.get(record.name, record.spec), permissions=mode)
            await self._agents.upsert_agent(spec, record.desired)
            if spec.name in roster:
                roster[spec.name] = spec
            live = self._sessions.driver(record.name) is not None
            now = live and await self._sessions.set_mode(record.name, mode)
        if now:
            said = f"{spec.name} now runs in mode {mode.value} (changed in its running session)"
        elif live:
            said = (
                f"{spec.name} runs in mode {mode.value} from its next run: its CLI cannot "
                "change to or from that mode while it runs (`restart` to apply it now)"
            )
        else:
            said = f"{spec.name} runs in mode {mode.value} from its next run"
        return said + f" — set by {by}"
