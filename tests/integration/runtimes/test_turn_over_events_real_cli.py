"""The end of a live session's turn as a fleet event, with the real Fleet and the real pinned
Claude Code (sandboxed, against the strict fake provider): an interrupted turn keeps the
process, waiting — told as ``turn over`` (idle), which ends a wait on the agent's turn at
once; the next turn ends its process — told as ``turn over`` (its process ending), which
ends no wait, then ``ended``, which does. Every listener hears them through
``Fleet.subscribe``; none of them is a notice."""

from __future__ import annotations

import asyncio

from fleet.events import EventKind, FleetEvent
from fleet.model import AgentSpec, AgentState, PermissionMode
from fleet.supervisor.turns import Turns
from tests.fakes.provider.server import Turn
from tests.integration.runtimes.test_claude_sessions import (  # noqa: F401  (the rig is a fixture)
    DEADLINE,
    NAME,
    Rig,
    bash,
    headless_rig,
)


async def test_a_live_sessions_turns_are_fleet_events_a_wait_hears(headless_rig: Rig) -> None:  # noqa: F811
    """Interrupted: `turn over` (idle) ends the wait at once, the run still going; the
    next turn's end, its process ending with it, ends no wait until the run has ended."""
    headless_rig.fake.add(bash("rm -rf build"), Turn(text="after the interrupt"))
    spec: AgentSpec = headless_rig.spec(PermissionMode.EDITS, prompt="clean", autostart=True)
    fleet = await headless_rig.fleet(spec)  # its roster starts it, through the admission
    heard: list[FleetEvent] = []

    async def listen(event: FleetEvent) -> None:
        heard.append(event)

    fleet.subscribe(listen)
    turns = Turns(fleet.subscribe)
    request = await headless_rig.pending()  # the turn is under way: it asks to run `rm`

    waiting = asyncio.create_task(turns.over(NAME, within=DEADLINE))
    await asyncio.sleep(0)
    assert turns.waiting() == {NAME: 1} and not waiting.done()
    await fleet.interrupt(NAME, by="ann")
    assert await asyncio.wait_for(waiting, DEADLINE) is True
    run = await headless_rig.ledger.runs.last_run(NAME)
    assert run is not None and run.ended_at is None and run.id == request.run_id
    [idle] = [e for e in heard if e.kind is EventKind.TURN_OVER]
    assert (idle.agent, idle.state, idle.run_id) == (NAME, AgentState.IDLE, run.id)

    ended = asyncio.create_task(turns.over(NAME, within=DEADLINE))
    await asyncio.sleep(0)
    await fleet.send(NAME, "go on")
    assert await asyncio.wait_for(ended, DEADLINE) is True
    last = await headless_rig.ledger.runs.last_run(NAME)
    assert last is not None and last.id == run.id and last.ended_at is not None
    kinds = [(e.kind, e.state) for e in heard if e.agent == NAME]
    assert kinds[-3:] == [
        (EventKind.TURN_OVER, AgentState.IDLE),
        (EventKind.TURN_OVER, AgentState.RUNNING),  # its process ends with this turn
        (EventKind.ENDED, AgentState.EXITED),
    ]
    assert all(e.run_id == run.id for e in heard if e.kind is EventKind.TURN_OVER)
    assert turns.waiting() == {}
