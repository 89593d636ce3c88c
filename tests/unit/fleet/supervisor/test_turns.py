"""Tests for fleet.supervisor.turns: awaiting the end of an agent's turn as the fleet tells
it — woken by a live session's turn that ends waiting, a run's end, the watchdog giving up
or a freeze, for that agent alone; at once when it is over already; never past its
deadline; and nothing left registered once a wait is over, however it ended. The real
Fleet (the stub agent, real processes) tells a freeze and an end."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.backends.process import SubprocessBackend
from fleet.events import EventKind, FleetEvent, Listener
from fleet.ledger import Ledger
from fleet.model import AgentSpec, AgentState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.supervisor.turns import Turns
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores

CODER = AgentName("coder")
OTHER = AgentName("other")


class Told:
    """The fleet's listeners, as a test tells them."""

    def __init__(self) -> None:
        self.listeners: list[Listener] = []

    async def tell(
        self,
        kind: EventKind,
        agent: AgentName = CODER,
        state: AgentState = AgentState.RUNNING,
        run_id: int | None = 7,
    ) -> None:
        for listener in self.listeners:
            await listener(FleetEvent(agent, kind, state, str(kind), False, run_id))


@pytest.fixture
def turns_told() -> Told:
    return Told()


@pytest.fixture
def turns(turns_told: Told) -> Turns:
    return Turns(turns_told.listeners.append)


async def _registered(turns: Turns, agent: str = CODER, count: int = 1) -> None:
    """The waits just begun have run to their first step: ``count`` are registered on
    ``agent``'s turn (a wait registers before it awaits anything)."""
    await asyncio.sleep(0)
    assert turns.waiting().get(agent, 0) == count


@pytest.mark.parametrize(
    ("kind", "state", "over"),
    [
        (EventKind.TURN_OVER, AgentState.IDLE, True),  # the session waits for its next turn
        (EventKind.ENDED, AgentState.EXITED, True),
        (EventKind.GAVE_UP, AgentState.FAILED, True),
        (EventKind.FROZEN, AgentState.RUNNING, True),
        (EventKind.TURN_OVER, AgentState.RUNNING, False),  # its process ends with the turn
        (EventKind.STARTED, AgentState.RUNNING, False),
        (EventKind.STALLED, AgentState.STALLED, False),
        (EventKind.REATTACHED, AgentState.RUNNING, False),
        (EventKind.RESTARTED, AgentState.RUNNING, False),
        (EventKind.REFUSED, AgentState.FAILED, False),
    ],
)
async def test_only_the_end_of_a_turn_ends_the_wait(
    turns: Turns, turns_told: Told, kind: EventKind, state: AgentState, over: bool
) -> None:
    """A session waiting after its turn, a run's end, the watchdog giving up and a freeze
    each end the wait at once, over; a turn whose process ends with it (its run's end
    follows), a start, a stall, a reattach, a restart and a refusal leave it to its
    deadline, not over. Nothing stays registered either way."""
    waiting = asyncio.create_task(turns.over(CODER, within=60 if over else 0.2))
    await _registered(turns)
    await turns_told.tell(kind, state=state)
    assert await asyncio.wait_for(waiting, 5) is over  # over: long before its 60 s
    assert turns.waiting() == {}


async def test_another_agents_end_wakes_nobody_else(turns: Turns, turns_told: Told) -> None:
    """The end of another agent's run leaves the wait on this one's turn as it was."""
    mine = asyncio.create_task(turns.over(CODER, within=60))
    theirs = asyncio.create_task(turns.over(OTHER, within=60))
    await _registered(turns)
    await _registered(turns, OTHER)
    await turns_told.tell(EventKind.ENDED, OTHER, AgentState.EXITED)
    assert await asyncio.wait_for(theirs, 5) is True
    assert not mine.done() and turns.waiting() == {CODER: 1}
    await turns_told.tell(EventKind.ENDED)
    assert await asyncio.wait_for(mine, 5) is True


async def test_every_wait_on_one_agent_is_woken_by_one_end(turns: Turns, turns_told: Told) -> None:
    """Two waits on one agent's turn share the one listener; one end wakes both."""
    first = asyncio.create_task(turns.over(CODER, within=60))
    second = asyncio.create_task(turns.over(CODER, within=60))
    await _registered(turns, count=2)
    assert len(turns_told.listeners) == 1
    await turns_told.tell(EventKind.TURN_OVER, state=AgentState.IDLE)
    assert await asyncio.wait_for(asyncio.gather(first, second), 5) == [True, True]
    assert turns.waiting() == {}


async def test_a_turn_already_over_is_not_waited_for(turns: Turns) -> None:
    """``now`` says it is over already (asked once the wait is registered): over at once."""
    seen: list[dict[str, int]] = []

    async def now() -> bool:
        seen.append(turns.waiting())
        return True

    assert await asyncio.wait_for(turns.over(CODER, within=60, now=now), 5) is True
    assert seen == [{CODER: 1}] and turns.waiting() == {}


async def test_the_deadline_ends_a_wait_nobody_ends(turns: Turns) -> None:
    """Nothing told and ``now`` saying no: the wait gives up at its deadline, not over."""

    async def now() -> bool:
        return False

    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await turns.over(CODER, within=0.2, now=now) is False
    assert 0.15 <= loop.time() - began < 5
    assert turns.waiting() == {}


async def test_a_cancelled_wait_leaves_nothing_registered(turns: Turns, turns_told: Told) -> None:
    """A wait whose waiter is cancelled (a stop) is gone; a later end wakes nobody."""
    waiting = asyncio.create_task(turns.over(CODER, within=60))
    await _registered(turns)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert turns.waiting() == {}
    await turns_told.tell(EventKind.ENDED)  # nobody to wake, nothing raised


async def test_an_end_heard_before_the_wait_began_is_not_missed(
    turns: Turns, turns_told: Told
) -> None:
    """A mark read during the turn, its end told before the wait registers: the wait is over
    at once; a mark with no end since waits for one (another agent's end does not move it)."""
    mark = turns.ends(CODER)
    await turns_told.tell(EventKind.TURN_OVER, state=AgentState.IDLE)  # before anyone waits
    assert await asyncio.wait_for(turns.over(CODER, within=60, since=mark), 5) is True
    mark = turns.ends(CODER)
    await turns_told.tell(EventKind.ENDED, OTHER, AgentState.EXITED)
    await turns_told.tell(EventKind.TURN_OVER)  # its next turn began at once: not over
    waiting = asyncio.create_task(turns.over(CODER, within=60, since=mark))
    await _registered(turns)
    assert not waiting.done()
    await turns_told.tell(EventKind.FROZEN)
    assert await asyncio.wait_for(waiting, 5) is True
    assert turns.waiting() == {}


async def test_a_wait_on_a_run_is_not_ended_by_another_runs_end(
    turns: Turns, turns_told: Told
) -> None:
    """A wait naming run 7: the end of run 8 leaves it, and is no end since its mark; the
    end of run 7, or of no run told (the watchdog giving up), ends it."""
    mark = turns.ends(CODER, run_id=7)
    await turns_told.tell(EventKind.ENDED, state=AgentState.EXITED, run_id=8)
    waiting = asyncio.create_task(turns.over(CODER, within=60, since=mark, run_id=7))
    await _registered(turns)
    await turns_told.tell(EventKind.TURN_OVER, state=AgentState.IDLE, run_id=8)
    await asyncio.sleep(0)
    assert not waiting.done()
    await turns_told.tell(EventKind.TURN_OVER, state=AgentState.IDLE, run_id=7)
    assert await asyncio.wait_for(waiting, 5) is True
    unnamed = asyncio.create_task(turns.over(CODER, within=60, run_id=7))
    await _registered(turns)
    await turns_told.tell(EventKind.GAVE_UP, state=AgentState.FAILED, run_id=None)
    assert await asyncio.wait_for(unnamed, 5) is True
    assert turns.ends(CODER, run_id=7) == turns.ends(CODER) == 4  # the 4th: unnamed


async def test_the_mark_of_any_run_moves_with_every_end_however_many_runs(
    turns: Turns, turns_told: Told
) -> None:
    """Past the runs counted one by one, every end still moves the mark of any run; a mark
    on a run no longer counted has moved (over at once, never missed)."""
    first = turns.ends(CODER, run_id=1)
    marks = []
    for run in range(1, 21):
        await turns_told.tell(EventKind.ENDED, state=AgentState.EXITED, run_id=run)
        marks.append(turns.ends(CODER))
    assert marks == list(range(1, 21))
    assert turns.ends(CODER, run_id=1) != first
    assert await asyncio.wait_for(turns.over(CODER, within=60, since=first, run_id=1), 5)


@pytest.fixture
async def turns_fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    """A started Fleet whose roster starts the stub agent ``coder`` at once."""
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    made = real_fleet(
        stores=fleet_stores(ledger),
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=FleetSettings(state_dir=tmp_path, stop_grace=2.0, reply_wait=0.2),
            environ=os.environ,
        ),
        roster={CODER: AgentSpec(name=CODER, runtime="stub", autostart=True)},
    )
    try:
        await made.start()
        yield made
    finally:
        if await made.knows(CODER) and (await made.status(CODER)).state.is_live:
            await made.thaw(CODER)
            await made.stop_agent(CODER, force=True)
        await made.stop()
        await ledger.close()


async def test_the_fleet_tells_a_freeze_and_a_runs_end(turns_fleet: Fleet) -> None:
    """The real fleet: a wait on a running stub agent ends when it is frozen, and another
    when it is stopped; neither before."""
    turns = Turns(turns_fleet.subscribe)
    assert (await turns_fleet.status(CODER)).state.is_live
    frozen = asyncio.create_task(turns.over(CODER, within=60))
    await _registered(turns)
    assert not frozen.done()
    assert await turns_fleet.freeze(CODER, reason="a test's pause", by="ann")
    assert await asyncio.wait_for(frozen, 10) is True
    await turns_fleet.thaw(CODER)
    ended = asyncio.create_task(turns.over(CODER, within=60))
    await _registered(turns)
    assert not ended.done()
    await turns_fleet.stop_agent(CODER)
    assert await asyncio.wait_for(ended, 10) is True
    assert turns.waiting() == {}
