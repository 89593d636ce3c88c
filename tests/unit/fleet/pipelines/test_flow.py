"""A mission made from a pipeline over the real register and ledger (fleet.pipelines.flow):
its tasks made per stage with their `--after` edges, the first started through the
admission; an `approve` gate that asks, denied — the mission stops and the later stage is
cancelled, never started; a gate a stop cut off, run again at the next start; a pipeline or
a stage's doer that is not there refused with the fix."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from fleet.ledger import Ledger
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.notices import Delivery, Notice
from fleet.pipelines.flow import Pipelines
from fleet.pipelines.judged import Judged
from fleet.pipelines.schema import PipelineEntry
from fleet.tasks.asked import HeldStart
from fleet.tasks.register import Register, TaskError
from tests.unit.fleet.tasks.test_ledger_register import Fleet

ROSTER = [
    AgentSpec(AgentName("planner"), "claude"),
    AgentSpec(AgentName("checker"), "claude", role="reviewer"),
]
WHERE: Mapping[str, str | None] = {"connector": "console", "room": "console", "sender": "op"}


class Board:
    """The notices posted, in order."""

    def __init__(self) -> None:
        self.posted: list[Notice] = []

    async def post(self, notice: Notice) -> Delivery:
        self.posted.append(notice)
        return Delivery()


def pipelines_of(
    ledger: Ledger, register: Register, board: Board, gate: str, fleet: Fleet | None = None
) -> Pipelines:
    """The pipelines over ``register``; ``fleet``: whose runs' ends they hear, as the app
    subscribes them (an `approve` gate's ask waits for the end of the run it asks about)."""
    entry = PipelineEntry.model_validate(
        {"stages": {"plan": {"agent": "planner", "gate": gate}, "review": {"role": "reviewer"}}}
    )

    async def start(held: HeldStart) -> bool:  # the chat's starter: the request, as asked
        assert (held.request.origin, held.request.task) == ("pipeline", held.task.id)
        await register.start(held.task, held.request, None)
        return True

    register.held.listen(start)
    pipes = Pipelines(
        register=register,
        stages=ledger.stages,
        tasks=ledger.tasks,
        missions=ledger.missions,
        runs=ledger.runs,
        reviews=ledger.reviews,
        judged=Judged(ledger.tasks, ledger.lines, ledger.runs, _tip),
        notices=board,
        pipelines=lambda: {"ship": entry},
        roster=lambda: ROSTER,
    )
    if fleet is not None:
        fleet.listeners.append(pipes.hear)
    return pipes


TIP = "c0ffee" * 6 + "abcd"
"""The commit every line's door repo holds here (these tests keep lines in the ledger only)."""


async def _tip(line_id: int) -> str | None:
    return TIP


async def _plan_done(ledger: Ledger, register: Register, fleet: Fleet, made_id: int) -> None:
    await register.settled()
    plan = await ledger.tasks.task(made_id)
    assert plan is not None and plan.state == "working" and plan.runs
    await fleet.end("planner", plan.runs[-1], "finished")


async def test_a_denied_approval_stops_the_mission(
    ledger: Ledger, register: Register, fleet: Fleet
) -> None:
    """The plan's run done, its `approve` gate asks the operators; denied, its gate fails,
    the review stage is cancelled without a run, and the operators are told."""
    board = Board()
    pipes = pipelines_of(ledger, register, board, "approve", fleet)
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    (_, plan), (_, review) = made.stages
    assert (plan.agent, review.agent, review.after) == ("planner", "checker", (plan.id,))
    await _plan_done(ledger, register, fleet, plan.id)
    await pipes.settled()
    assert "`mission approve login plan`" in board.posted[-1].markdown
    stage = await pipes.deny(made.mission, "op")
    assert stage.stage == "plan"
    states = [t.state for t in [await ledger.tasks.task(i) for i in (plan.id, review.id)] if t]
    assert states == ["done", "cancelled"]  # the plan's run had ended done; the gate failed
    assert (await ledger.tasks.task(review.id) or review).runs == ()
    gates = [(s.gate_state, s.why) for s in await ledger.stages.of_mission(made.mission.id)]
    assert gates == [("failed", "denied by op"), ("stopped", "stage plan's gate failed")]
    assert "denied by op" in board.posted[-1].markdown
    assert "Never started: review" in board.posted[-1].markdown
    with pytest.raises(TaskError, match="no stage of mission login waits"):
        await pipes.approve(made.mission, "op")


async def test_a_gate_a_stop_cut_off_runs_again(
    ledger: Ledger, register: Register, fleet: Fleet
) -> None:
    """A gate left `checking` when its stage's work was over is run again by the sweep: it
    passes and the next stage starts, told of the one before."""
    pipes = pipelines_of(ledger, register, Board(), "auto")
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    (_, plan), (_, review) = made.stages
    assert await ledger.stages.move(plan.id, "checking", "", came_from=("waiting",))
    await _plan_done(ledger, register, fleet, plan.id)
    await pipes.settled()
    assert (await ledger.tasks.task(review.id) or review).state == "todo"  # nobody ran it
    assert await pipes.sweep() == 1
    await register.settled()
    started = await ledger.tasks.task(review.id)
    assert started is not None and started.state == "working"
    assert "This is stage review of pipeline ship (mission login)" in started.body
    assert "Stage plan (task #1, agent planner): done" in started.body


async def test_a_pipeline_or_doer_not_there_is_refused_with_the_fix(
    ledger: Ledger, register: Register
) -> None:
    """An unknown pipeline names the likeliest one; nothing is made."""
    pipes = pipelines_of(ledger, register, Board(), "auto")
    with pytest.raises(TaskError, match="no pipeline 'shp' — did you mean 'ship'"):
        await pipes.make("login", "shp", "Fix it", by="op", source="chat", asked_in=WHERE)
    assert await ledger.missions.missions() == []


async def test_a_stage_cancelled_stops_the_mission_its_words_escaped(
    ledger: Ledger, register: Register
) -> None:
    """A stage's task cancelled stops the mission; the reason, which may be anyone's words,
    reaches the operators as plain text (no link, no markup)."""
    board = Board()
    pipes = pipelines_of(ledger, register, board, "auto")
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    (_, plan), (_, review) = made.stages
    await register.settled()
    await register.end(plan, "cancelled", "[click](javascript:alert(1)) **now**", by="op")
    await pipes.settled()
    told = board.posted[-1].markdown
    assert "Mission login stopped at stage **plan**" in told and "Never started: review" in told
    assert "[click](" not in told and "**now**" not in told and "\\[click\\]" in told
    assert (await ledger.tasks.task(review.id) or review).state == "cancelled"
