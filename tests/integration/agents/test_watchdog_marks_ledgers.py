"""The watchdog's state marks for many agents at once (``AgentsStore.set_states``), on
SQLite and on a real PostgreSQL: one transaction, each agent's change and event as
``set_state`` would write them, repeats and unknown names left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.model import AgentSpec, AgentState, DesiredState
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerLocation:
    path = tmp_path / "state" / "ledger.db"
    if request.param == "sqlite":
        return LedgerLocation(path)
    return LedgerLocation(path, str(request.getfixturevalue("postgres_dsn")))


async def test_many_agents_change_state_in_one_go(location: LedgerLocation) -> None:
    clock = ManualClock(T0)
    ledger = await Ledger.connect(location, clock)
    try:
        names = [AgentName(f"a{i:03d}") for i in range(620)]  # more than one query's worth
        for name in names:
            await ledger.agents.upsert_agent(AgentSpec(name, "stub"), DesiredState.RUNNING)
            await ledger.agents.set_state(name, AgentState.RUNNING, "pid 1")
        await ledger.agents.set_state(names[1], AgentState.IDLE, "waiting for input")
        changes: list[tuple[str, AgentState, str]] = [
            (name, AgentState.IDLE, "waiting for input") for name in names
        ]
        changes += [("ghost", AgentState.IDLE, "waiting"), (names[2], AgentState.STALLED, "quiet")]

        unknown = await ledger.agents.set_states(changes)

        assert unknown == ["ghost"]
        records = {r.name: r for r in await ledger.agents.list_agents()}
        assert records[names[0]].state is AgentState.IDLE
        assert records[names[0]].state_reason == "waiting for input"
        assert records[names[2]].state is AgentState.STALLED  # the later change, in order
        assert all(records[n].state is AgentState.IDLE for n in names[3:])
        events = await ledger.agents.agent_events(names[0])
        assert [(e.from_state, e.to_state, e.reason) for e in events[:1]] == [
            (AgentState.RUNNING, AgentState.IDLE, "waiting for input")
        ]
        # names[1] was idle for that reason already: no new event.
        assert [e.to_state for e in await ledger.agents.agent_events(names[1])][:2] == [
            AgentState.IDLE,
            AgentState.RUNNING,
        ]
        stalled = await ledger.agents.agent_events(names[2])
        assert [e.to_state for e in stalled[:2]] == [AgentState.STALLED, AgentState.IDLE]
        assert await ledger.agents.set_states([]) == []
    finally:
        await ledger.close()
