"""Tests for forge work waiting on an agent's turn as the fleet tells it, never polling:
``done`` is published once a live session's turn ends with the session waiting (then frozen
or ended as ``on_done`` says) — not at the end of a turn whose process ends with it, which
is published at its run's end, unfrozen —; a comment during a headless turn goes into the
session once that turn's run has ended; one to a frozen agent goes in at once, thawing it."""

from __future__ import annotations

import asyncio

import pytest

from fleet.events import EventKind as FleetKind
from fleet.forge.door.door import DoorScope
from fleet.forge.model import EventKind
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import AGENT, BOT, WorkRig, event, forge_entry

LONG = 60.0  # seconds a wait would take without the fleet's word: far past each test's own


async def _done_while_working(rig: WorkRig) -> None:
    """The agent says done in its turn; its publishing waits on the turn's end."""
    await rig.started()
    await rig.desk.done(await _scope(rig), "ok", "Done.")
    async with asyncio.timeout(5):
        while rig.launcher.turns.waiting().get(AGENT, 0) < 1:  # noqa: ASYNC110
            await asyncio.sleep(0)  # the publishing's own task reaches its wait


async def _scope(rig: WorkRig) -> DoorScope:
    scope = await rig.desk.scope_of(AGENT)
    assert scope is not None
    return scope


@pytest.mark.parametrize(("on_done", "ended_by"), [("freeze", "freeze"), ("end", "stop")])
async def test_a_live_sessions_turn_over_publishes_at_once(
    ledger: Ledger, clock: ManualClock, on_done: str, ended_by: str
) -> None:
    """The session waits after its turn: frozen (or ended, as `on_done` says) and
    published at once — long before the wait would have run out."""
    rig = WorkRig.make(ledger, clock, entry=forge_entry(on_done=on_done), turn_wait=LONG)
    await _done_while_working(rig)
    assert rig.launcher.named("push") == []
    await rig.launcher.tell(AGENT, FleetKind.TURN_OVER)
    await asyncio.wait_for(rig.work.settle(), 5)
    ops = rig.launcher.ops()
    assert ops.count(ended_by) == 1 and ops.index(ended_by) < ops.index("push")
    assert len(rig.api.pulls) == 1
    assert rig.launcher.turns.waiting() == {}


async def test_a_turn_whose_process_ends_is_published_at_its_runs_end_unfrozen(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Claude Code's turn ends its process: that turn's end publishes nothing and freezes
    nothing; the run's end that follows publishes it, nothing frozen or stopped."""
    rig = WorkRig.make(ledger, clock, turn_wait=LONG)
    await _done_while_working(rig)
    await rig.launcher.tell(AGENT, FleetKind.TURN_OVER, ending=True)
    await asyncio.sleep(0)
    assert rig.launcher.named("push") == [] and rig.api.pulls == {}
    assert rig.launcher.turns.waiting() == {AGENT: 1}
    await rig.launcher.tell(AGENT, FleetKind.ENDED)
    await asyncio.wait_for(rig.work.settle(), 5)
    assert len(rig.launcher.named("push")) == 1 and len(rig.api.pulls) == 1
    assert rig.launcher.named("freeze") == [] and rig.launcher.named("stop") == []


async def test_a_comment_during_a_headless_turn_goes_in_once_its_run_ended(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The session takes no words while its headless turn runs: the comment waits for
    that run's end (told by the fleet), then continues the session — once."""
    rig = WorkRig.make(ledger, clock)
    rig.launcher.headless.add(AGENT)
    await rig.started()
    await _comment_waiting(rig)
    await rig.launcher.tell(AGENT, FleetKind.ENDED)
    await asyncio.wait_for(rig.work.settle(), 5)
    assert len(rig.launcher.named("follow_up")) == 2
    assert rig.launcher.named("start_on_line") == []
    assert rig.launcher.turns.waiting() == {}


async def test_a_comment_waiting_on_a_turn_goes_in_once_the_agent_is_frozen(
    ledger: Ledger, clock: ManualClock
) -> None:
    """A cutoff pauses the agent while a comment waits on its turn: the wait is over (the
    follow-up thaws it), the comment goes in at once."""
    rig = WorkRig.make(ledger, clock)
    rig.launcher.headless.add(AGENT)
    await rig.started()
    await _comment_waiting(rig)
    rig.launcher.frozen.add(AGENT)
    await rig.launcher.tell(AGENT, FleetKind.FROZEN)
    await asyncio.wait_for(rig.work.settle(), 5)
    assert len(rig.launcher.named("follow_up")) == 2
    assert rig.launcher.turns.waiting() == {}


async def _comment_waiting(rig: WorkRig) -> None:
    """A comment for the agent, its follow-up tried once and now waiting on the turn."""
    ev = event(EventKind.COMMENT, body=f"@{BOT} one more thing")
    assert await rig.ledger.forge.take_delivery(ev.forge, ev.delivery, ev.name, "{}")
    await rig.work.receive(ev)
    async with asyncio.timeout(5):
        while rig.launcher.turns.waiting().get(AGENT, 0) < 1:  # noqa: ASYNC110
            await asyncio.sleep(0)  # the follow-up's own task reaches its wait
    assert len(rig.launcher.named("follow_up")) == 1


async def test_a_turn_over_told_before_the_publishing_waits_is_not_missed(
    ledger: Ledger, clock: ManualClock
) -> None:
    """The live session's turn ends (waiting for its next) right after its ``done``, before
    the publishing's own task has begun to wait: published at once, not after the wait."""
    rig = WorkRig.make(ledger, clock, turn_wait=LONG)
    await rig.started()
    await rig.desk.done(await _scope(rig), "ok", "Done.")
    assert rig.launcher.turns.waiting() == {}  # its task has not run yet
    await rig.launcher.tell(AGENT, FleetKind.TURN_OVER)
    await asyncio.wait_for(rig.work.settle(), 5)
    assert rig.launcher.named("freeze") and len(rig.api.pulls) == 1
    assert rig.launcher.turns.waiting() == {}
