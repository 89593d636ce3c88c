"""A register's worth of tasks for the Tasks page: a mission with a sub-mission, tasks in
every state made and moved through the real stores, two of them with real runs whose
usage was metered, and titles and bodies written to break a page (:data:`HOSTILE`).

The clock is moved by hand: what each run used is known to the token (:data:`WORKING_USE`,
:data:`REVIEW_USE`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleet.ledger import Ledger
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask, Projection, TaskState
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0
from tests.unit.fleet.metering.test_run_watch import AGENT, SPEC, run_of, used

SCRIPT = "<script>document.title='pwned'</script> fix the login"
IMG = '"><img src=x onerror="document.title=\'pwned\'"> tidy the imports'
MARKDOWN = "**bold** [click](javascript:alert(1)) # heading\n| a | b |"
RTL = "invoice \u202egnp.exe"
LONG = "long " * 2_000  # 10 kB
HOSTILE = (SCRIPT, IMG, MARKDOWN, RTL, LONG)
"""Titles written to break a page: markup, an attribute's end, markdown, a bidi override
and ten kilobytes."""
BODY = "<script>alert('body')</script>\n# not a heading\n\u202e" + "x" * 10_000
PULL = "https://git.example.org/app/pulls/3"
PROJECTED = Projection("agent coder-1 · runtime claude", (1, 2), (9000.0, 12000.0), (0.5, 0.8))
TOKENS_ONLY = Projection("agent coder-1 · runtime claude", (1,), (9000.0, 12000.0), None)
WORKING_USE = (6200, 0.31)
"""What the working task's run used: tokens and dollars."""
REVIEW_USE = 4333
"""What the task in review's run used, in tokens (unpriced)."""


@dataclass(frozen=True, slots=True)
class Rig:
    """The ids of the tasks made, by what they are."""

    working: int
    review: int
    todo: int
    queued: int
    done: int
    failed: int
    cancelled: int
    extra_done: tuple[int, ...]


async def _task(ledger: Ledger, new: NewTask, projection: Projection, state: TaskState) -> int:
    made = await ledger.tasks.add_task(new, projection)
    if state != "todo":
        assert await ledger.tasks.move(made.id, state, f"moved to {state}")
    return made.id


async def build(ledger: Ledger, clock: ManualClock, tmp_path: Path, extra_done: int = 0) -> Rig:
    """The register: mission ``release`` (sub-mission ``docs``) and its tasks; ``extra_done``
    more done tasks outside any mission."""
    release = await ledger.missions.add_mission("release", "Ship 2.0 <b>now</b>", "@op:hs")
    assert release is not None
    docs = await ledger.missions.add_mission("docs", "The guide", "@op:hs", parent=release.id)
    assert docs is not None
    agent = str(AGENT)
    review = await _task(
        ledger,
        NewTask(IMG, "forge", "@op:hs", source_ref="app#3", mission=docs.id, agent=agent),
        TOKENS_ONLY,
        "review",
    )
    await ledger.tasks.set_fields(review, branch="fix/imports", pull_url=PULL)
    review_run = await run_of(ledger, clock, tmp_path, SPEC, seconds=100)
    await ledger.tasks.add_run(review, review_run)
    since = (clock.now() - T0).total_seconds()
    working = await _task(
        ledger,
        NewTask(SCRIPT, "chat", "@op:hs", body=BODY, mission=release.id, agent=agent),
        PROJECTED,
        "working",
    )
    working_run = await run_of(ledger, clock, tmp_path, SPEC, seconds=0)  # still going
    await ledger.tasks.add_run(working, working_run)
    await ledger.metering.record_metering(
        [used(since - 50, REVIEW_USE, None), used(since + 10, *WORKING_USE)], []
    )
    clock.advance(20)
    todo = await _task(
        ledger, NewTask(MARKDOWN, "chat", "@op:hs", mission=release.id), NO_PROJECTION, "todo"
    )
    await ledger.tasks.set_fields(todo, pull_url="javascript:alert(1)")
    queued = await _task(ledger, NewTask(RTL, "schedule", "@op:hs"), PROJECTED, "queued")
    long = NewTask(LONG, "chat", "@op:hs", mission=release.id)
    done = await _task(ledger, long, PROJECTED, "done")
    failed = await _task(ledger, NewTask("flaky tests", "task", "@op:hs"), PROJECTED, "failed")
    cancelled = await _task(ledger, NewTask("old idea", "chat", "@op:hs"), PROJECTED, "cancelled")
    extra = [
        await _task(ledger, NewTask(f"chore {i}", "chat", "@op:hs"), PROJECTED, "done")
        for i in range(extra_done)
    ]
    return Rig(working, review, todo, queued, done, failed, cancelled, tuple(extra))
