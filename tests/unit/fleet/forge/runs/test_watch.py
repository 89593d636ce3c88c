"""Tests for the forge runs' round and their queue: a run queued for a busy agent starts
once it is free (and only the oldest), a queued run stopped leaves the agent's other work
alone, a ``done`` whose publishing was lost is published, the watchdog says once that an
agent went silent without ``done``, and the status comment is edited only when what it
says changed — after a restart too, on the same comment."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.clock import ManualClock
from fleet.forge.model import EventKind
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunState
from tests.unit.fleet.forge.runs.work_rig import (
    AGENT,
    BOT,
    BRANCH,
    FORGE,
    LABEL,
    SLUG,
    WorkRig,
    event,
)

MINUTE = 60.0


@pytest.fixture
def rig(ledger: Ledger, clock: ManualClock) -> WorkRig:
    rig = WorkRig.make(ledger, clock)
    for number in (5, 6):
        rig.api.add_issue(number, title=f"Issue {number}")
    return rig


def _watchdog_posts(rig: WorkRig, number: int) -> list[str]:
    return [t for t in rig.api.texts_on(number) if "did not signal done" in t]


async def test_a_busy_agent_queues_the_run_and_the_spawn_queue_starts_it_once_free(
    rig: WorkRig,
) -> None:
    """Busy: queued in the spawn queue, the status comment says so; the round and the
    queue's turn leave it while the agent runs, and the queue starts it once it is free."""
    rig.launcher.running.add(AGENT)
    outcome = await rig.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome == "queued: coder is running"
    record = await rig.run()
    assert record.state == "queued" and rig.launcher.starts == []
    status = rig.status(record)
    assert "Queued" in status.history[-1]
    assert rig.launcher.in_queue == {record.id}
    await rig.watch.tick()
    await rig.queue_turn()
    assert rig.launcher.starts == [] and rig.launcher.in_queue == {record.id}
    rig.launcher.running.discard(AGENT)
    await rig.watch.tick()
    assert rig.launcher.starts == []  # the round starts nothing: the queue does
    await rig.queue_turn()
    [start] = rig.launcher.starts
    assert start["branch"] == BRANCH
    fresh = await rig.record(record.id)
    assert (fresh.state, fresh.run_id) == ("working", 100)
    assert "Working" in status.history[-1] and len(rig.api.comments_on(3)) == 1


async def test_queued_runs_of_a_busy_agent_cost_a_round_nothing_new(
    rig: WorkRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three issues queued for a busy agent: rounds start none, and write and edit nothing
    while nothing changed."""
    rig.launcher.running.add(AGENT)
    for number in (3, 5, 6):
        await rig.deliver(event(EventKind.LABELED, number=number, label=LABEL))
    await rig.watch.tick()
    edits = len(rig.api.named("edit_comment"))
    writes: list[int] = []
    update = rig.ledger.forge.update_forge_run

    async def counted(key: int, **fields: Any) -> None:
        writes.append(key)
        await update(key, **fields)

    monkeypatch.setattr(rig.ledger.forge, "update_forge_run", counted)
    for _ in range(3):
        rig.clock.advance(15)
        await rig.watch.tick()
    assert rig.launcher.starts == [] and len(rig.api.named("edit_comment")) == edits
    assert writes == []


async def test_the_run_an_agent_works_on_holds_its_next_issue(rig: WorkRig) -> None:
    """An agent waiting for review of one issue's PR takes no other until that PR closes,
    then the oldest queued one starts and the next stays queued."""
    first = await rig.started()
    await rig.ledger.forge.update_forge_run(first.id, state=ForgeRunState.WAITING, pull=18)
    rig.launcher.running.discard(AGENT)
    for number in (5, 6):
        outcome = await rig.deliver(event(EventKind.LABELED, number, label=LABEL))
        assert outcome == "queued: coder works on acme/app#3 until its PR closes"
    await rig.watch.tick()
    assert len(rig.launcher.starts) == 1
    closed = event(EventKind.PULL_CLOSED, 18, is_pull=True, merged=True)
    assert (await rig.deliver(closed)).startswith("ended coder's run")
    await rig.work.settle()
    assert [s["branch"] for s in rig.launcher.starts] == [BRANCH, "fw/coder/issue-5"]
    assert (await rig.run(5)).state == "working"
    assert (await rig.run(6)).state == "queued"


async def test_stopping_a_queued_run_leaves_the_agents_other_work_alone(rig: WorkRig) -> None:
    """#5 unlabelled while queued behind #3: #5 stops; coder goes on working on #3."""
    first = await rig.started()
    assert (await rig.deliver(event(EventKind.LABELED, 5, label=LABEL))).startswith("queued")
    outcome = await rig.deliver(event(EventKind.UNLABELED, 5, label=LABEL))
    assert outcome == "stopped coder: the issue was unlabelled"
    assert rig.launcher.named("stop") == []
    assert AGENT in rig.launcher.running
    assert (await rig.record(first.id)).state == "working"


async def test_a_lost_done_is_published_by_the_round(rig: WorkRig) -> None:
    """A `done` kept in the ledger whose publishing never ran (a restart): the round
    publishes it once the agent is not running."""
    record = await rig.started()
    await rig.ledger.forge.update_forge_run(
        record.id, done_signal="agent", done_status="ok", summary="All fixed."
    )
    await rig.watch.tick()
    await rig.work.settle()
    assert rig.launcher.named("push") == []  # still running: not yet
    rig.launcher.running.discard(AGENT)
    await rig.watch.tick()
    await rig.work.settle()
    [pull] = rig.api.pulls.values()
    assert any("All fixed." in t for t in rig.api.texts_on(pull.number))
    assert (await rig.record(record.id)).state == "waiting"
    await rig.watch.tick()
    await rig.work.settle()
    assert len(rig.launcher.named("push")) == 1 and len(rig.api.pulls) == 1


async def test_the_watchdog_speaks_once_after_the_timeout(rig: WorkRig) -> None:
    """Not running, no `done`, silent past 30 minutes: one comment saying the agent did
    not signal done, with the footer; the run waits; later rounds say nothing more."""
    record = await rig.started()
    rig.launcher.running.discard(AGENT)
    rig.clock.advance(29 * MINUTE)
    await rig.watch.tick()
    assert _watchdog_posts(rig, 3) == []
    rig.clock.advance(1 * MINUTE)
    await rig.watch.tick()
    [said] = _watchdog_posts(rig, 3)
    assert "within 30 minutes" in said and said.rstrip().endswith("</details>")
    assert "the watchdog: the agent did not say done" in said
    fresh = await rig.record(record.id)
    assert (fresh.state, fresh.done_signal) == ("waiting", "watchdog")
    assert "No done signal" in rig.status(fresh).history[-1]
    rig.clock.advance(120 * MINUTE)
    await rig.watch.tick()
    await rig.watch.tick()
    assert len(_watchdog_posts(rig, 3)) == 1
    assert rig.launcher.named("push") == []


async def test_the_watchdog_waits_for_a_running_agent_and_counts_from_activity(
    rig: WorkRig,
) -> None:
    """A running agent is never watchdogged; silence counts from the last door call."""
    record = await rig.started()
    rig.clock.advance(90 * MINUTE)
    await rig.watch.tick()
    assert _watchdog_posts(rig, 3) == []
    scope = await rig.desk.scope_of(AGENT)
    await rig.desk.audit(scope, AGENT, "read", True, "read issue #3")
    rig.launcher.running.discard(AGENT)
    rig.clock.advance(20 * MINUTE)
    await rig.watch.tick()
    assert _watchdog_posts(rig, 3) == []
    rig.clock.advance(10 * MINUTE)
    await rig.watch.tick()
    assert len(_watchdog_posts(rig, 3)) == 1
    assert (await rig.record(record.id)).done_signal == "watchdog"


async def test_the_watchdog_speaks_on_the_pull_request_when_there_is_one(
    rig: WorkRig,
) -> None:
    """After a follow-up on the PR went silent, the watchdog's word goes on the PR."""
    record = await rig.started()
    await rig.ledger.forge.update_forge_run(record.id, pull=18, pull_url="https://x/pull/18")
    rig.launcher.running.discard(AGENT)
    rig.clock.advance(31 * MINUTE)
    await rig.watch.tick()
    assert len(_watchdog_posts(rig, 18)) == 1 and _watchdog_posts(rig, 3) == []


async def test_the_status_comment_is_edited_only_when_its_text_changes(rig: WorkRig) -> None:
    """Rounds with nothing new edit nothing, however long the run has been going (its
    footer says "still running", not a duration that would change each round); a new door
    call shown as what it does now edits once."""
    record = await rig.started()
    status = rig.status(record)
    await rig.watch.tick()
    edits = len(rig.api.named("edit_comment"))
    for seconds in (15, 15, 3_600, 86_400):
        rig.clock.advance(seconds)
        await rig.watch.tick()
    assert len(rig.api.named("edit_comment")) == edits
    assert "still running" in status.history[-1]
    scope = await rig.desk.scope_of(AGENT)
    await rig.desk.audit(scope, AGENT, "read", True, "read the file src/parse.py")
    await rig.watch.tick()
    await rig.watch.tick()
    assert len(rig.api.named("edit_comment")) == edits + 1
    assert "read the file src/parse.py" in status.history[-1]
    assert len(status.history) == len(set(status.history))


async def test_a_restart_edits_the_same_comment_and_starts_no_second_run(
    ledger: Ledger, clock: ManualClock, rig: WorkRig
) -> None:
    """Fleetwarden restarted mid-run: the round edits the one status comment, and the
    trigger seen again (a poll, a redelivery under a new id) starts nothing."""
    record = await rig.started()
    again = WorkRig.make(ledger, clock, api=rig.api, launcher=rig.launcher)
    await again.watch.tick()
    assert len(rig.api.comments_on(3)) == 1
    assert {c[2] for c in rig.api.named("edit_comment")} == {record.comment_id}
    outcome = await again.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome == "ignored: #3 already has a run of coder"
    assert len(rig.launcher.starts) == 1
    assert [r.id for r in await ledger.forge.forge_runs()] == [record.id]
    assert await ledger.forge.live_forge_run(FORGE, SLUG, 3) == await again.run()


async def test_the_round_ignores_runs_that_are_over(rig: WorkRig) -> None:
    """A stopped run is not watchdogged, restarted or edited by the round."""
    await rig.started()
    await rig.deliver(event(EventKind.UNASSIGNED, assignee=BOT))
    edits = len(rig.api.named("edit_comment"))
    rig.clock.advance(600 * MINUTE)
    await rig.watch.tick()
    await rig.work.settle()
    assert len(rig.launcher.starts) == 1 and _watchdog_posts(rig, 3) == []
    assert len(rig.api.named("edit_comment")) == edits


async def test_a_refused_run_left_queued_with_no_place_is_launched_again_by_the_round(
    rig: WorkRig,
) -> None:
    """A launch refused (a budget, its quote) leaves the run queued on its issue with no
    place in the spawn queue: the round launches it again, as its first launch was, and
    it starts once nothing refuses it — never stranded until a restart."""
    rig.launcher.refuse[AGENT] = "the fleet's budgets do not allow another run now"
    await rig.deliver(event(EventKind.LABELED, label=LABEL))
    record = await rig.run()
    assert record.state == "queued" and rig.launcher.in_queue == set()
    tries = len([c for c in rig.launcher.calls if c[0] == "start"])
    await rig.watch.tick()
    assert len([c for c in rig.launcher.calls if c[0] == "start"]) == tries + 1
    assert (await rig.record(record.id)).state == "queued"
    del rig.launcher.refuse[AGENT]
    await rig.watch.tick()
    fresh = await rig.record(record.id)
    assert fresh.state == "working" and len(rig.launcher.starts) == 1
