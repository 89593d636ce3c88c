"""Whether one agent may reach another, decided once (:meth:`fleet.peers.rules.Rules.reach`)
from the roster as it is when the right is used: a message sent, a message delivered, a
task handed on and a task started once its peer is free. A reload that takes the peer out
of the sender's ``talks_to``, or the sender out of the roster, refuses what still waits —
recorded with why and told — and a peer's queue counts the tasks that wait for it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.ledger.records.peers import MessageRecord
from fleet.names import AgentName
from fleet.peers.errors import PeerRefusal
from fleet.peers.handoff import Handoff
from fleet.peers.postbox import Postbox
from fleet.supervisor.admission.admit import Wait
from fleet.supervisor.admission.request import Admitted, LaunchRequest, Queued
from fleet.tasks.register import Register
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.fleet import LedgerFleet
from tests.fakes.doubles.launches import an_admission
from tests.fakes.doubles.stores import task_runs_of
from tests.unit.fleet.peers.rig import peer_fleet, postbox_over, redact


@pytest.fixture
def reach_fleet(ledger: Ledger, tmp_path: Path) -> LedgerFleet:
    task_runs = task_runs_of(ledger)
    return peer_fleet(ledger, tmp_path, task_runs)


@pytest.fixture
def postbox(ledger: Ledger, reach_fleet: LedgerFleet, clock: ManualClock) -> Postbox:
    return postbox_over(ledger, reach_fleet, clock, queue=2)


@pytest.fixture
def handoff(ledger: Ledger, reach_fleet: LedgerFleet, postbox: Postbox) -> Handoff:
    assert reach_fleet.task_runs is not None
    register = Register(
        tasks=ledger.tasks,
        missions=ledger.missions,
        actuals=ledger.actuals,
        runs=reach_fleet.task_runs,
        admission=an_admission(reach_fleet, slots=None, budgets=None, tasks=reach_fleet.task_runs),
    )
    made = Handoff(postbox=postbox, register=register, tasks=ledger.tasks, runs=ledger.runs)
    reach_fleet.listeners.append(made.hear)
    return made


def heard_by(postbox: Postbox) -> list[MessageRecord]:
    heard: list[MessageRecord] = []

    async def hear(message: MessageRecord) -> None:
        heard.append(message)

    postbox.listen(hear)
    return heard


async def test_a_sender_taken_out_of_the_roster_may_reach_no_one(
    postbox: Postbox, reach_fleet: LedgerFleet
) -> None:
    """An agent a reload took out of the roster (its record still known) is refused at
    its call, and what it queued before is refused at delivery, never delivered."""
    sent = await postbox.send("coder", "reviewer", "before the reload")
    await postbox.settled()
    reach_fleet.removed.add("coder")
    with pytest.raises(PeerRefusal, match="you are not in the roster now"):
        await postbox.send("coder", "reviewer", "after the reload")
    await reach_fleet.launch("reviewer")
    await postbox.settled()
    found = await postbox.wait_for(sent.id, 0)
    assert (found.state, found.why) == (
        "refused",
        "not delivered: coder is no longer in the roster",
    )
    assert reach_fleet.sent == []


async def test_a_task_waiting_when_its_peer_is_taken_away_is_refused_not_started(
    handoff: Handoff, postbox: Postbox, reach_fleet: LedgerFleet, ledger: Ledger
) -> None:
    """A task handed to a busy peer, then a reload taking the peer out of the sender's
    ``talks_to``: refused at the reload's sweep, said, the task left for an operator —
    and the peer's run ending starts nothing."""
    await reach_fleet.launch("helper")
    handed = await handoff.hand("coder", "helper", "Write the migration")
    assert handed.message.state == "queued" and "starts once that run ends" in handed.text
    heard = heard_by(postbox)
    spawned = len(reach_fleet.spawned)
    reach_fleet.specs["coder"] = replace(
        reach_fleet.specs["coder"], talks_to=(AgentName("reviewer"),)
    )
    await handoff.sweep()  # as the app does after a reload
    await handoff.settled()
    found = await postbox.message(handed.message.id)
    why = "not started: helper is no longer one of coder's peers"
    assert found is not None and (found.state, found.why) == ("refused", why)
    assert [(m.id, m.state) for m in heard] == [(handed.message.id, "refused")]
    task = await ledger.tasks.task(handed.task.id)
    assert task is not None and task.state == "todo"
    assert task.why == f"handed on by coder, {why}; `task start {task.id}` starts it"
    await reach_fleet.end("helper")
    await handoff.settled()
    assert len(reach_fleet.spawned) == spawned  # nothing started on helper


async def test_a_task_waiting_whose_sender_keeps_its_right_starts_when_the_peer_is_free(
    handoff: Handoff, postbox: Postbox, reach_fleet: LedgerFleet, ledger: Ledger
) -> None:
    """The re-check refuses only what lost its right: a task still allowed starts once the
    peer's run ends."""
    await reach_fleet.launch("helper")
    handed = await handoff.hand("coder", "helper", "Write the migration")
    await handoff.sweep()
    await handoff.settled()
    await reach_fleet.end("helper")
    await handoff.settled()
    found = await postbox.message(handed.message.id)
    assert found is not None and found.state == "delivered"
    assert reach_fleet.launches()[-1][0] == "helper"


async def test_a_peers_queue_counts_the_tasks_waiting_for_it(
    handoff: Handoff, postbox: Postbox, reach_fleet: LedgerFleet, ledger: Ledger
) -> None:
    """Two tasks waiting for a busy peer fill a queue of two: the next task, and the next
    message, are refused in the queue's words, and the third task is never made."""
    await reach_fleet.launch("helper")
    for title in ("one", "two"):
        assert (await handoff.hand("coder", "helper", title)).message.state == "queued"
    with pytest.raises(PeerRefusal, match="helper has 2 messages waiting"):
        await handoff.hand("coder", "helper", "three")
    with pytest.raises(PeerRefusal, match="helper has 2 messages waiting"):
        await postbox.send("coder", "helper", "and this")
    assert [t.title for t in await ledger.tasks.tasks()] == ["one", "two"]


class FullCap:
    """The admission while a concurrency cap is full: a launch waits (the postbox keeps its
    message queued); once ``full`` is cleared, launches go through the real admission."""

    def __init__(self, fleet: LedgerFleet) -> None:
        self.full = True
        self.asked: list[str] = []
        self._real = an_admission(fleet, slots=None, budgets=None, tasks=fleet.task_runs)

    async def admit(self, request: LaunchRequest, wait: Wait | None = None) -> Admitted:
        self.asked.append(request.agent)
        if self.full:
            return Queued("1 of 1 agents run (limits.max_running)")
        return await self._real.admit(request, wait)


async def test_a_wake_held_by_a_cap_is_refused_once_its_sender_lost_the_right(
    ledger: Ledger, reach_fleet: LedgerFleet, clock: ManualClock
) -> None:
    """A message that waits for a full cap to wake its ``wake: start`` peer counts in the
    peer's queue; once a reload takes the peer from the sender's ``talks_to``, the next
    try refuses it, saying why, and never launches the peer."""
    cap = FullCap(reach_fleet)
    postbox = Postbox(
        messages=ledger.messages,
        runs=ledger.runs,
        fleet=reach_fleet,
        admission=cap,
        redact=redact,
        clock=clock,
        queue=1,
    )
    try:
        sent = await postbox.send("coder", "helper", "wake up")
        await postbox.settled()
        assert (await postbox.wait_for(sent.id, 0)).state == "queued" and cap.asked == ["helper"]
        with pytest.raises(PeerRefusal, match="helper has 1 messages waiting"):
            await postbox.send("coder", "helper", "and again")
        reach_fleet.specs["coder"] = replace(
            reach_fleet.specs["coder"], talks_to=(AgentName("reviewer"),)
        )
        cap.full = False  # a slot frees as the reload is applied
        await postbox.sweep()
        await postbox.settled()
        found = await postbox.wait_for(sent.id, 0)
        assert (found.state, found.why) == (
            "refused",
            "not delivered: helper is no longer one of coder's peers",
        )
        assert cap.asked == ["helper"] and reach_fleet.spawned == []
    finally:
        await postbox.stop()
