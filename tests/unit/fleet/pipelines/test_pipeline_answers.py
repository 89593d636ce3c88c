"""What an operator is told about a pipeline's `approve` gate over the real register and
ledger: `mission approve` typed before any stage asks says which stage works now and
whose run must end first; the ask of the last stage says that a yes ends the mission."""

from __future__ import annotations

import pytest

from fleet.ledger import Ledger
from fleet.ledger.records.tasks import TaskRecord
from fleet.pipelines.flow import Pipelines
from fleet.pipelines.judged import Judged
from fleet.pipelines.schema import PipelineEntry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.tasks.register import Register, TaskError, prompt_of
from tests.unit.fleet.pipelines.test_flow import ROSTER, WHERE, Board, _plan_done, _tip
from tests.unit.fleet.tasks.test_ledger_register import Fleet


def _pipelines(
    ledger: Ledger, register: Register, board: Board, fleet: Fleet | None = None
) -> Pipelines:
    """Pipeline ship: plan (auto) → review (reviewer role, `approve`), hearing ``fleet``'s
    runs' ends as the app subscribes it."""
    entry = PipelineEntry.model_validate(
        {
            "stages": {
                "plan": {"agent": "planner"},
                "review": {"role": "reviewer", "after": ["plan"], "gate": "approve"},
            }
        }
    )

    async def start(task: TaskRecord) -> bool:
        assert task.agent is not None
        await register.start(task, LaunchRequest(task.agent, prompt=prompt_of(task)), None)
        return True

    register.listen(start)
    pipes = Pipelines(
        register=register, stages=ledger.stages, tasks=ledger.tasks, missions=ledger.missions,
        runs=ledger.runs, reviews=ledger.reviews,
        judged=Judged(ledger.tasks, ledger.lines, ledger.runs, _tip), notices=board,
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
