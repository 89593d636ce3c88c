"""What an operator is told about a pipeline's `approve` gate over the real register and
ledger: `mission approve` typed before any stage asks says which stage works now and
whose run must end first; the ask of the last stage says that a yes ends the mission."""

from __future__ import annotations

import pytest

from fleet.ledger import Ledger
from fleet.pipelines.flow import Pipelines
from fleet.pipelines.judged import Judged, Tip
from fleet.pipelines.schema import PipelineEntry
from fleet.tasks.asked import HeldStart
from fleet.tasks.register import Register, TaskError
from tests.unit.fleet.pipelines.test_flow import ROSTER, WHERE, Board, _plan_done, _tip
from tests.unit.fleet.tasks.test_ledger_register import Fleet


def _pipelines(
    ledger: Ledger, register: Register, board: Board, fleet: Fleet | None = None, tip: Tip = _tip
) -> Pipelines:
    """Pipeline ship: plan (auto) → review (reviewer role, `approve`), hearing ``fleet``'s
    runs' ends as the app subscribes it; ``tip``: the lines' tips."""
    entry = PipelineEntry.model_validate(
        {
            "stages": {
                "plan": {"agent": "planner"},
                "review": {"role": "reviewer", "after": ["plan"], "gate": "approve"},
            }
        }
    )

    async def start(held: HeldStart) -> bool:
        await register.start(held.task, held.request, None)
        return True

    register.held.listen(start)
    pipes = Pipelines(
        register=register, stages=ledger.stages, tasks=ledger.tasks, missions=ledger.missions,
        runs=ledger.runs, reviews=ledger.reviews,
        judged=Judged(ledger.tasks, ledger.lines, ledger.runs, tip), notices=board,
        pipelines=lambda: {"ship": entry}, roster=lambda: ROSTER,
    )  # fmt: skip
    if fleet is not None:
        fleet.listeners.append(pipes.hear)
    return pipes


async def test_an_early_approve_says_what_the_mission_waits_for(
    ledger: Ledger, register: Register
) -> None:
    """Typed while the plan runs: the stage at work, whose run ends it, and the stage that
    will ask."""
    pipes = _pipelines(ledger, register, Board())
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    await register.settled()
    with pytest.raises(TaskError) as refused:
        await pipes.approve(made.mission, "op")
    said = str(refused.value)
    assert "no stage of mission login waits for an operator's answer yet" in said
    assert "stage plan (task #1" in said and "runs now" in said, said
    assert "once planner's run ends" in said and "`send planner exit`" in said
    assert "`mission approve login review` answers it then" in said


async def test_the_last_stages_ask_says_a_yes_ends_the_mission(
    ledger: Ledger, register: Register, fleet: Fleet
) -> None:
    """The review stage is the last: its ask says the mission is done on a yes and its
    change is left to land, never that it starts what comes next."""
    board = Board()
    pipes = _pipelines(ledger, register, board, fleet)
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    (_, plan), (_, review) = made.stages
    await _plan_done(ledger, register, fleet, plan.id)
    await pipes.settled()
    await _plan_done(ledger, register, fleet, review.id)
    await pipes.settled()
    ask = board.posted[-1].markdown
    assert "`mission approve login review`" in ask, ask
    assert "starts what comes next" not in ask
    assert "the mission is done" in ask


async def test_an_early_approve_of_a_named_stage_says_what_the_mission_waits_for(
    ledger: Ledger, register: Register
) -> None:
    """`mission approve login review` typed while the plan runs answers as the bare form
    does (the stage at work, whose run ends it), not that the review's gate is waiting."""
    pipes = _pipelines(ledger, register, Board())
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    await register.settled()
    with pytest.raises(TaskError) as refused:
        await pipes.approve(made.mission, "op", "review")
    said = str(refused.value)
    assert "its gate is waiting" not in said, said
    assert "no stage of mission login waits for an operator's answer yet" in said
    assert "stage plan (task #1" in said and "`send planner exit`" in said, said
    assert "`mission approve login review` answers it then" in said


CHANGED = "c" * 40
"""The tip of the planner's line: a commit past the one it forked from."""
FORK = "f" * 40


async def test_a_stage_that_committed_nothing_asks_about_the_change_it_read(
    ledger: Ledger, register: Register, fleet: Fleet
) -> None:
    """The review's own line holds no commit of its own: its gate asks about the plan's
    line at that line's tip, names that branch to `merge`, and records that line."""
    board = Board()
    tips: dict[int, str] = {}

    async def tip(line_id: int) -> str | None:
        return tips.get(line_id)

    pipes = _pipelines(ledger, register, board, fleet, tip)
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    (_, plan), (_, review) = made.stages

    async def cut(agent: str, task_id: int, at: str) -> int:
        await register.settled()
        started = await ledger.tasks.task(task_id)
        assert started is not None and started.runs
        line = await ledger.lines.add_line(
            repo="app", agent=agent, branch=f"fw/{agent}/{task_id}", base_ref="main",
            fork_sha=FORK, checkout="/nowhere",
        )  # fmt: skip
        await ledger.lines.line_ran(line, started.runs[-1])
        tips[line] = at
        return started.runs[-1]

    await cut("planner", plan.id, CHANGED)
    await _plan_done(ledger, register, fleet, plan.id)
    await pipes.settled()
    await fleet.end("reviewer", await cut("reviewer", review.id, FORK), "finished")
    await pipes.settled()
    ask = board.posted[-1].markdown
    assert f"fw/planner/{plan.id} at commit {CHANGED[:12]}" in ask, ask
    assert f"fw/reviewer/{review.id}" not in ask and FORK[:12] not in ask, ask
    assert f"`merge fw/planner/{plan.id}`" in ask, ask
    stage = await ledger.stages.stage_of(review.id)
    assert stage is not None and stage.commit == CHANGED
    line_of_plan = await ledger.lines.line(stage.line_id or 0)
    assert line_of_plan is not None and line_of_plan.branch == f"fw/planner/{plan.id}"
