"""Work handed on: ``fw-msg task`` makes a task in the register for the peer — asked by the
sender, in the sender's current task's mission — started through the real admission with
the framed task as its prompt and its run bound to it; recorded as a message of kind
``task``; refused, like a message, to an agent that is not a peer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.ledger.records.tasks import NewTask
from fleet.peers.errors import PeerRefusal
from fleet.peers.handoff import Handoff
from fleet.supervisor.admission.request import LaunchRequest, Started
from fleet.tasks.register import Register
from fleet.tasks.runs import TaskRuns
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.fleet import LedgerFleet
from tests.fakes.doubles.launches import an_admission
from tests.fakes.doubles.stores import task_runs_of
from tests.unit.fleet.peers.rig import SECRET, peer_fleet, postbox_over


@pytest.fixture
def task_runs(ledger: Ledger) -> TaskRuns:
    return task_runs_of(ledger)


@pytest.fixture
def handoff_fleet(ledger: Ledger, tmp_path: Path, task_runs: TaskRuns) -> LedgerFleet:
    return peer_fleet(ledger, tmp_path, task_runs)


@pytest.fixture
def handoff_register(ledger: Ledger, handoff_fleet: LedgerFleet, task_runs: TaskRuns) -> Register:
    return Register(
        tasks=ledger.tasks,
        missions=ledger.missions,
        actuals=ledger.actuals,
        runs=task_runs,
        admission=an_admission(handoff_fleet, slots=None, budgets=None, tasks=task_runs),
    )


@pytest.fixture
def handoff(
    ledger: Ledger, handoff_fleet: LedgerFleet, clock: ManualClock, handoff_register: Register
) -> Handoff:
    postbox = postbox_over(ledger, handoff_fleet, clock)
    return Handoff(postbox=postbox, register=handoff_register, tasks=ledger.tasks, runs=ledger.runs)


async def test_a_task_handed_on_is_made_in_the_senders_mission_and_started(
    handoff: Handoff, handoff_register: Register, ledger: Ledger, handoff_fleet: LedgerFleet
) -> None:
    mission = await handoff_register.new_mission("login", "The login page", "@op:hs")
    own = await handoff_register.new(
        NewTask("Fix the login page", "chat", "@op:hs", mission=mission.id, agent="coder")
    )
    started = await handoff_register.start(own, LaunchRequest("coder", prompt=own.title), None)
    assert isinstance(started, Started) and started.outcome.started
    assert (await handoff.current_task("coder")) is not None

    handed = await handoff.hand("coder", "helper", "Write the migration", "for the users table")

    task = handed.task
    assert (task.title, task.body, task.source, task.asked_by) == (
        "Write the migration",
        "for the users table",
        "task",
        "agent coder",
    )
    assert (task.source_ref, task.mission, task.agent, task.state) == (
        own.name,
        mission.id,
        "helper",
        "working",
    )
    helper_run = await ledger.runs.last_run("helper")
    assert helper_run is not None and task.runs == (helper_run.id,)
    [(agent, prompt, by)] = handoff_fleet.launches()[1:]
    assert (agent, by) == ("helper", "agent coder")
    assert prompt == (
        f"── task {task.id} from coder (claude on local) ──\n"
        "> Write the migration\n> \n> for the users table\n"
        f'── end of task {task.id} · answer: fw-msg send coder "…" ──'
    )
    message = handed.message
    assert (message.kind, message.task_id, message.state) == ("task", task.id, "delivered")
    assert message.delivered_run == helper_run.id
    assert handed.text == f"task #{task.id} {task.name} for helper started"


async def test_a_task_for_an_agent_not_a_peer_is_refused_and_not_made(
    handoff: Handoff, ledger: Ledger
) -> None:
    with pytest.raises(PeerRefusal, match="loner is not one of your peers"):
        await handoff.hand("coder", "loner", "Do my work")
    assert await ledger.tasks.tasks() == []
    [message] = await ledger.messages.recent("coder")
    assert (message.kind, message.state) == ("task", "refused")


async def test_a_task_whose_run_cannot_start_is_made_and_its_message_refused(
    handoff: Handoff, ledger: Ledger, handoff_fleet: LedgerFleet
) -> None:
    handoff_fleet.cannot_launch = "helper cannot start: host box cannot be reached now"
    handed = await handoff.hand("coder", "helper", "Write the migration")
    assert handed.text == (
        f"task #{handed.task.id} {handed.task.name} for helper is made but not started: "
        "helper cannot start: host box cannot be reached now"
    )
    assert handed.task.state == "todo" and handed.message.state == "refused"
    assert handed.message.why.startswith("not started: helper cannot start")


async def test_a_secret_in_a_task_handed_on_reaches_neither_the_register_nor_the_peer(
    handoff: Handoff, ledger: Ledger, handoff_fleet: LedgerFleet
) -> None:
    handed = await handoff.hand("coder", "helper", f"Use {SECRET}", f"the token is {SECRET}")
    [task] = await ledger.tasks.tasks()
    assert SECRET not in task.title and SECRET not in task.body
    assert "[REDACTED]" in task.title and "[REDACTED]" in task.body
    assert SECRET not in handed.message.text
    [(_, prompt, _)] = handoff_fleet.launches()
    assert prompt is not None and SECRET not in prompt and "[REDACTED]" in prompt


async def test_tasks_made_but_not_started_count_against_the_senders_rate(
    handoff: Handoff, ledger: Ledger, handoff_fleet: LedgerFleet
) -> None:
    handoff_fleet.cannot_launch = "helper cannot start: over its budget"
    for number in range(5):  # coder may send 5 an hour
        handed = await handoff.hand("coder", "helper", f"Task {number}")
        assert handed.message.state == "refused" and handed.message.task_id is not None
    with pytest.raises(PeerRefusal, match="you sent 5 messages this hour"):
        await handoff.hand("coder", "helper", "Task 5")
    assert len(await ledger.tasks.tasks()) == 5


async def test_tasks_handed_on_at_once_cannot_pass_the_rate_together(
    handoff: Handoff, ledger: Ledger
) -> None:
    results = await asyncio.gather(
        *(handoff.hand("coder", "helper", f"Task {n}") for n in range(8)),
        return_exceptions=True,
    )
    assert len([r for r in results if isinstance(r, PeerRefusal)]) == 3  # coder may send 5
    assert len(await ledger.tasks.tasks()) == 5


async def test_a_task_for_a_peer_that_runs_waits_and_starts_once_its_run_ends(
    handoff: Handoff, ledger: Ledger, handoff_fleet: LedgerFleet
) -> None:
    handoff_fleet.listeners.append(handoff.hear)
    await handoff_fleet.launch("helper")  # working on something else
    handed = await handoff.hand("coder", "helper", "Write the migration")
    assert handed.text == (
        f"task #{handed.task.id} {handed.task.name} for helper is made; helper runs now, "
        "so it starts once that run ends"
    )
    assert handed.task.state == "todo" and handed.message.state == "queued"
    assert [m.id for m in await ledger.messages.tasks_waiting("helper")] == [handed.message.id]
    assert handoff_fleet.spawned == []

    await handoff_fleet.end("helper")
    for _ in range(50):
        message = await ledger.messages.message(handed.message.id)
        if message is not None and message.state != "queued":
            break
        await asyncio.sleep(0.02)
    assert message is not None and message.state == "delivered"
    [(agent, prompt, by)] = handoff_fleet.launches()
    assert agent == "helper" and by == "agent coder" and "── task" in (prompt or "")
    task = await ledger.tasks.task(handed.task.id)
    assert task is not None and task.state == "working"
    assert await ledger.messages.tasks_waiting() == []
    await handoff.stop()


async def test_a_waiting_task_that_ended_meanwhile_never_starts(
    handoff: Handoff, handoff_register: Register, ledger: Ledger, handoff_fleet: LedgerFleet
) -> None:
    await handoff_fleet.launch("helper")
    handed = await handoff.hand("coder", "helper", "Write the migration")
    await handoff_register.end(handed.task, "cancelled", "not needed", by="@op:hs")
    await handoff_fleet.end("helper")
    await handoff.sweep()
    for _ in range(50):
        message = await ledger.messages.message(handed.message.id)
        if message is not None and message.state != "queued":
            break
        await asyncio.sleep(0.02)
    assert message is not None and message.state == "refused"
    assert message.why == "its task ended before it started"
    assert handoff_fleet.spawned == []
