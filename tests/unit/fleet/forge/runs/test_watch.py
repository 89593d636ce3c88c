"""Tests for the forge runs' round and their queue: a run queued for a busy agent starts
once it is free (and only the oldest), a queued run stopped leaves the agent's other work
alone, a ``done`` whose publishing was lost is published, the watchdog says once that an
agent went silent without ``done``, and the status comment is edited only when what it
says changed — after a restart too, on the same comment."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.forge.model import EventKind
from fleet.ledger import Ledger
from fleet.ledger.records.forge import ForgeRunState
from fleet.timing.clock import ManualClock
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
def watch_rig(ledger: Ledger, clock: ManualClock) -> WorkRig:
    watch_rig = WorkRig.make(ledger, clock)
    for number in (5, 6):
        watch_rig.api.add_issue(number, title=f"Issue {number}")
    return watch_rig


def _watchdog_posts(rig: WorkRig, number: int) -> list[str]:
    return [t for t in rig.api.texts_on(number) if "did not signal done" in t]


async def test_a_busy_agent_queues_the_run_and_the_spawn_queue_starts_it_once_free(
    watch_rig: WorkRig,
) -> None:
    """Busy: queued in the spawn queue, the status comment says so; the round and the
    queue's turn leave it while the agent runs, and the queue starts it once it is free."""
    watch_rig.launcher.running.add(AGENT)
    outcome = await watch_rig.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome == "queued: coder is running"
    record = await watch_rig.run()
    assert record.state == "queued" and watch_rig.launcher.starts == []
    status = watch_rig.status(record)
    assert "Queued" in status.history[-1]
    assert watch_rig.launcher.in_queue == {record.id}
    await watch_rig.watch.tick()
    await watch_rig.queue_turn()
    assert watch_rig.launcher.starts == [] and watch_rig.launcher.in_queue == {record.id}
    watch_rig.launcher.running.discard(AGENT)
    await watch_rig.watch.tick()
    assert watch_rig.launcher.starts == []  # the round starts nothing: the queue does
    await watch_rig.queue_turn()
    [start] = watch_rig.launcher.starts
    assert start["branch"] == BRANCH
    fresh = await watch_rig.record(record.id)
    assert (fresh.state, fresh.run_id) == ("working", 100)
    assert "Working" in status.history[-1] and len(watch_rig.api.comments_on(3)) == 1


async def test_queued_runs_of_a_busy_agent_cost_a_round_nothing_new(
    watch_rig: WorkRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three issues queued for a busy agent: rounds start none, and write and edit nothing
    while nothing changed."""
    watch_rig.launcher.running.add(AGENT)
    for number in (3, 5, 6):
        await watch_rig.deliver(event(EventKind.LABELED, number=number, label=LABEL))
    await watch_rig.watch.tick()
    edits = len(watch_rig.api.named("edit_comment"))
    writes: list[int] = []
    update = watch_rig.ledger.forge.update_forge_run

    async def counted(key: int, **fields: Any) -> None:
        writes.append(key)
        await update(key, **fields)

    monkeypatch.setattr(watch_rig.ledger.forge, "update_forge_run", counted)
    for _ in range(3):
        watch_rig.clock.advance(15)
        await watch_rig.watch.tick()
    assert watch_rig.launcher.starts == [] and len(watch_rig.api.named("edit_comment")) == edits
    assert writes == []


async def test_the_run_an_agent_works_on_holds_its_next_issue(watch_rig: WorkRig) -> None:
    """An agent waiting for review of one issue's PR takes no other until that PR closes,
    then the oldest queued one starts and the next stays queued."""
    first = await watch_rig.started()
    await watch_rig.ledger.forge.update_forge_run(first.id, state=ForgeRunState.WAITING, pull=18)
    watch_rig.launcher.running.discard(AGENT)
    for number in (5, 6):
        outcome = await watch_rig.deliver(event(EventKind.LABELED, number, label=LABEL))
        assert outcome == "queued: coder works on acme/app#3 until its PR closes"
    await watch_rig.watch.tick()
    assert len(watch_rig.launcher.starts) == 1
    closed = event(EventKind.PULL_CLOSED, 18, is_pull=True, merged=True)
    assert (await watch_rig.deliver(closed)).startswith("ended coder's run")
    await watch_rig.work.settle()
    assert [s["branch"] for s in watch_rig.launcher.starts] == [BRANCH, "fw/coder/issue-5"]
    assert (await watch_rig.run(5)).state == "working"
    assert (await watch_rig.run(6)).state == "queued"


async def test_stopping_a_queued_run_leaves_the_agents_other_work_alone(watch_rig: WorkRig) -> None:
    """#5 unlabelled while queued behind #3: #5 stops; coder goes on working on #3."""
    first = await watch_rig.started()
    assert (await watch_rig.deliver(event(EventKind.LABELED, 5, label=LABEL))).startswith("queued")
    outcome = await watch_rig.deliver(event(EventKind.UNLABELED, 5, label=LABEL))
    assert outcome == "stopped coder: the issue was unlabelled"
    assert watch_rig.launcher.named("stop") == []
    assert AGENT in watch_rig.launcher.running
    assert (await watch_rig.record(first.id)).state == "working"


async def test_a_lost_done_is_published_by_the_round(watch_rig: WorkRig) -> None:
    """A `done` kept in the ledger whose publishing never ran (a restart): the round
    publishes it once the agent is not running."""
    record = await watch_rig.started()
    await watch_rig.ledger.forge.update_forge_run(
        record.id, done_signal="agent", done_status="ok", summary="All fixed."
    )
    await watch_rig.watch.tick()
    await watch_rig.work.settle()
    assert watch_rig.launcher.named("push") == []  # still running: not yet
    watch_rig.launcher.running.discard(AGENT)
    await watch_rig.watch.tick()
    await watch_rig.work.settle()
    [pull] = watch_rig.api.pulls.values()
    assert any("All fixed." in t for t in watch_rig.api.texts_on(pull.number))
    assert (await watch_rig.record(record.id)).state == "waiting"
    await watch_rig.watch.tick()
    await watch_rig.work.settle()
    assert len(watch_rig.launcher.named("push")) == 1 and len(watch_rig.api.pulls) == 1


async def test_the_watchdog_speaks_once_after_the_timeout(watch_rig: WorkRig) -> None:
    """Not running, no `done`, silent past 30 minutes: one comment saying the agent did
    not signal done, with the footer; the run waits; later rounds say nothing more."""
    record = await watch_rig.started()
    watch_rig.launcher.running.discard(AGENT)
    watch_rig.clock.advance(29 * MINUTE)
    await watch_rig.watch.tick()
    assert _watchdog_posts(watch_rig, 3) == []
    watch_rig.clock.advance(1 * MINUTE)
    await watch_rig.watch.tick()
    [said] = _watchdog_posts(watch_rig, 3)
    assert "within 30 minutes" in said and said.rstrip().endswith("</details>")
    assert "the watchdog: the agent did not say done" in said
    fresh = await watch_rig.record(record.id)
    assert (fresh.state, fresh.done_signal) == ("waiting", "watchdog")
    assert "No done signal" in watch_rig.status(fresh).history[-1]
    watch_rig.clock.advance(120 * MINUTE)
    await watch_rig.watch.tick()
    await watch_rig.watch.tick()
    assert len(_watchdog_posts(watch_rig, 3)) == 1
    assert watch_rig.launcher.named("push") == []


async def test_the_watchdog_waits_for_a_running_agent_and_counts_from_activity(
    watch_rig: WorkRig,
) -> None:
    """A running agent is never watchdogged; silence counts from the last door call."""
    record = await watch_rig.started()
    watch_rig.clock.advance(90 * MINUTE)
    await watch_rig.watch.tick()
    assert _watchdog_posts(watch_rig, 3) == []
    scope = await watch_rig.desk.scope_of(AGENT)
    await watch_rig.desk.audit(scope, AGENT, "read", True, "read issue #3")
    watch_rig.launcher.running.discard(AGENT)
    watch_rig.clock.advance(20 * MINUTE)
    await watch_rig.watch.tick()
    assert _watchdog_posts(watch_rig, 3) == []
    watch_rig.clock.advance(10 * MINUTE)
    await watch_rig.watch.tick()
    assert len(_watchdog_posts(watch_rig, 3)) == 1
    assert (await watch_rig.record(record.id)).done_signal == "watchdog"


async def test_the_watchdog_speaks_on_the_pull_request_when_there_is_one(
    watch_rig: WorkRig,
) -> None:
    """After a follow-up on the PR went silent, the watchdog's word goes on the PR."""
    record = await watch_rig.started()
    await watch_rig.ledger.forge.update_forge_run(record.id, pull=18, pull_url="https://x/pull/18")
    watch_rig.launcher.running.discard(AGENT)
    watch_rig.clock.advance(31 * MINUTE)
    await watch_rig.watch.tick()
    assert len(_watchdog_posts(watch_rig, 18)) == 1 and _watchdog_posts(watch_rig, 3) == []


async def test_the_status_comment_is_edited_only_when_its_text_changes(watch_rig: WorkRig) -> None:
    """Rounds with nothing new edit nothing, however long the run has been going (its
    footer says "still running", not a duration that would change each round); a new door
    call shown as what it does now edits once."""
    record = await watch_rig.started()
    status = watch_rig.status(record)
    await watch_rig.watch.tick()
    edits = len(watch_rig.api.named("edit_comment"))
    for seconds in (15, 15, 3_600, 86_400):
        watch_rig.clock.advance(seconds)
        await watch_rig.watch.tick()
    assert len(watch_rig.api.named("edit_comment")) == edits
    assert "still running" in status.history[-1]
    scope = await watch_rig.desk.scope_of(AGENT)
    await watch_rig.desk.audit(scope, AGENT, "read", True, "read the file src/parse.py")
    await watch_rig.watch.tick()
    await watch_rig.watch.tick()
    assert len(watch_rig.api.named("edit_comment")) == edits + 1
    assert "read the file src/parse.py" in status.history[-1]
    assert len(status.history) == len(set(status.history))


async def test_a_restart_edits_the_same_comment_and_starts_no_second_run(
    ledger: Ledger, clock: ManualClock, watch_rig: WorkRig
) -> None:
    """Fleetwarden restarted mid-run: the round edits the one status comment, and the
    trigger seen again (a poll, a redelivery under a new id) starts nothing."""
    record = await watch_rig.started()
    again = WorkRig.make(ledger, clock, api=watch_rig.api, launcher=watch_rig.launcher)
    await again.watch.tick()
    assert len(watch_rig.api.comments_on(3)) == 1
    assert {c[2] for c in watch_rig.api.named("edit_comment")} == {record.comment_id}
    outcome = await again.deliver(event(EventKind.LABELED, label=LABEL))
    assert outcome == "ignored: #3 already has a run of coder"
    assert len(watch_rig.launcher.starts) == 1
    assert [r.id for r in await ledger.forge.forge_runs()] == [record.id]
    assert await ledger.forge.live_forge_run(FORGE, SLUG, 3) == await again.run()


async def test_the_round_ignores_runs_that_are_over(watch_rig: WorkRig) -> None:
    """A stopped run is not watchdogged, restarted or edited by the round."""
    await watch_rig.started()
    await watch_rig.deliver(event(EventKind.UNASSIGNED, assignee=BOT))
    edits = len(watch_rig.api.named("edit_comment"))
    watch_rig.clock.advance(600 * MINUTE)
    await watch_rig.watch.tick()
    await watch_rig.work.settle()
    assert len(watch_rig.launcher.starts) == 1 and _watchdog_posts(watch_rig, 3) == []
    assert len(watch_rig.api.named("edit_comment")) == edits


async def test_a_refused_run_left_queued_with_no_place_is_launched_again_by_the_round(
    watch_rig: WorkRig,
) -> None:
    """A launch refused (a budget, its quote) leaves the run queued on its issue with no
    place in the spawn queue: the round launches it again, as its first launch was, and
    it starts once nothing refuses it — never stranded until a restart."""
    watch_rig.launcher.refuse[AGENT] = "the fleet's budgets do not allow another run now"
    await watch_rig.deliver(event(EventKind.LABELED, label=LABEL))
    record = await watch_rig.run()
    assert record.state == "queued" and watch_rig.launcher.in_queue == set()
    tries = len([c for c in watch_rig.launcher.calls if c[0] == "start"])
    await watch_rig.watch.tick()
    assert len([c for c in watch_rig.launcher.calls if c[0] == "start"]) == tries + 1
    assert (await watch_rig.record(record.id)).state == "queued"
    del watch_rig.launcher.refuse[AGENT]
    await watch_rig.watch.tick()
    fresh = await watch_rig.record(record.id)
    assert fresh.state == "working" and len(watch_rig.launcher.starts) == 1
