"""A pipeline's mission over the real register and ledger where its stages run side by side
or a stop cut a move short (fleet.pipelines.flow, .answers): an operator's answer tied to
the stage named; a stopped mission ending its stages still running, at once or at the next
start; the sweep starting a stage whose stages before it passed, and finishing a stop that
was cut off, told once; `task start` of a stage whose stage before it asks refused."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from bot.render.work import pipelines as render_pipelines
from fleet.ledger import Ledger
from fleet.ledger.records.tasks import MissionRecord, TaskRecord
from fleet.pipelines.flow import Pipelines
from fleet.pipelines.schema import PipelineEntry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.tasks.asked import prompt_of
from fleet.tasks.register import Register, TaskError
from tests.unit.fleet.pipelines.test_flow import WHERE, Board, _plan_done, pipelines_of
from tests.unit.fleet.tasks.test_ledger_register import Fleet

SIDE_BY_SIDE = {"a": {"agent": "planner", "after": []}, "b": {"role": "reviewer", "after": []}}


def side_by_side(pipes: Pipelines, gate: str) -> None:
    """``pipes``' pipeline ``ship`` as two stages with nothing before them, gated ``gate``."""
    stages = {name: {**entry, "gate": gate} for name, entry in SIDE_BY_SIDE.items()}
    entry = PipelineEntry.model_validate({"stages": stages})
    pipes._making._pipelines = lambda: {"ship": entry}


async def _now(ledger: Ledger, task: TaskRecord) -> TaskRecord:
    found = await ledger.tasks.task(task.id)
    assert found is not None
    return found


async def _gates(ledger: Ledger, mission: MissionRecord) -> Mapping[str, str]:
    return {s.stage: s.gate_state for s in await ledger.stages.of_mission(mission.id)}


async def _both_asking(
    ledger: Ledger, register: Register, fleet: Fleet, board: Board
) -> tuple[Pipelines, MissionRecord]:
    pipes = pipelines_of(ledger, register, board, "auto", fleet)
    side_by_side(pipes, "approve")
    made = await pipes.make("par", "ship", "x", by="op", source="chat", asked_in=WHERE)
    await register.settled()
    for (_, task), agent in zip(made.stages, ("planner", "checker"), strict=True):
        await fleet.end(agent, (await _now(ledger, task)).runs[-1], "finished")
        await register.settled()
        await pipes.settled()
    assert await _gates(ledger, made.mission) == {"a": "asking", "b": "asking"}
    return pipes, made.mission


async def test_an_answer_is_tied_to_the_stage_named(
    ledger: Ledger, register: Register, fleet: Fleet
) -> None:
    """Two stages asking: the notice quotes the command with its stage; an answer naming
    none is refused naming both; the stage named passes, the other still asks; a stage
    answered already is refused pointing at the one still asking."""
    board = Board()
    pipes, mission = await _both_asking(ledger, register, fleet, board)
    shown = [n.markdown for n in board.posted]
    assert "`mission approve par a`" in shown[0] and "`mission deny par b`" in shown[1]
    with pytest.raises(TaskError, match="stages a, b of mission par each ask an answer"):
        await pipes.approve(mission, "op")
    with pytest.raises(TaskError, match="stages a, b of mission par each ask an answer"):
        await pipes.deny(mission, "op")
    assert (await pipes.approve(mission, "op", "b")).stage == "b"
    assert await _gates(ledger, mission) == {"a": "asking", "b": "passed"}
    with pytest.raises(TaskError, match="stage b of mission par asks no answer: its gate is "
                       "passed; `mission deny par a`"):  # fmt: skip
        await pipes.deny(mission, "op", "b")
    with pytest.raises(TaskError, match="mission par has no stage 'c': its stages are a, b"):
        await pipes.approve(mission, "op", "c")
    assert (await pipes.approve(mission, "op")).stage == "a"  # the one asking now
    assert await _gates(ledger, mission) == {"a": "passed", "b": "passed"}
    assert board.posted[-1].markdown == "Mission par: every stage passed its gate; it is done."


async def test_a_stopped_mission_ends_its_stage_running_beside(
    ledger: Ledger, register: Register, fleet: Fleet
) -> None:
    """Stage a's task fails while stage b runs beside it: b's task is cancelled, its run
    stopped, its gate stopped, and the notice and `mission M` name it as stopped under way."""
    board = Board()
    pipes = pipelines_of(ledger, register, board, "auto")
    side_by_side(pipes, "auto")
    made = await pipes.make("par", "ship", "x", by="op", source="chat", asked_in=WHERE)
    (_, a), (_, b) = made.stages
    await register.settled()
    assert (await _now(ledger, b)).state == "working"
    await fleet.end("planner", (await _now(ledger, a)).runs[-1], "failed")
    await register.settled()
    await pipes.settled()
    assert (await _now(ledger, b)).state == "cancelled"
    assert [name for name, _ in fleet.stopped] == ["checker"]
    assert await _gates(ledger, made.mission) == {"a": "failed", "b": "stopped"}
    told = board.posted[-1].markdown
    assert "Mission par stopped at stage **a**" in told
    assert f"Stopped under way: b (#{b.id})." in told and "Never started" not in told
    shown = render_pipelines.stages(await pipes.stages(made.mission))
    assert "gate auto: stopped under way (stage a's gate failed)" in shown


async def test_a_stop_cut_off_is_finished_at_the_next_start_told_once(
    ledger: Ledger, register: Register, fleet: Fleet
) -> None:
    """A stage's gate failed but the stop went no further (the process ended): a fresh
    start's sweep cancels the stage still running beside it and the one after it, and tells
    the operators once — a second sweep has nothing left to do."""
    pipes = pipelines_of(ledger, register, Board(), "auto")
    entry = PipelineEntry.model_validate({"stages": {
        "a": {"agent": "planner", "after": []}, "b": {"role": "reviewer", "after": []},
        "c": {"agent": "planner", "after": ["a", "b"]},
    }})  # fmt: skip
    pipes._making._pipelines = lambda: {"ship": entry}
    made = await pipes.make("par", "ship", "x", by="op", source="chat", asked_in=WHERE)
    (_, a), (_, b), (_, c) = made.stages
    await register.settled()
    assert await ledger.stages.move(a.id, "failed", "denied by op", came_from=("waiting",))
    board = Board()
    again = pipelines_of(ledger, register, board, "auto")  # the next start's, none started
    again._making._pipelines = pipes._making._pipelines
    assert await again.sweep() == 1
    await again.settled()
    states = [(await _now(ledger, t)).state for t in (a, b, c)]
    assert states == ["failed", "cancelled", "cancelled"]
    assert await _gates(ledger, made.mission) == {"a": "failed", "b": "stopped", "c": "stopped"}
    assert [n.markdown.split("\n")[0] for n in board.posted] == [
        f"Mission par stopped at stage **a** (task #{a.id} {a.name}): denied by op"
    ]
    told = board.posted[0].markdown
    assert f"Stopped under way: b (#{b.id})." in told and f"Never started: c (#{c.id})." in told
    assert await again.sweep() == 0
    assert len(board.posted) == 1


async def test_a_stage_whose_start_was_cut_off_is_started_by_the_sweep(
    ledger: Ledger, register: Register, fleet: Fleet
) -> None:
    """The plan's gate moved to passed but the stop came before the review was started: the
    sweep starts it, told what the plan left."""
    pipes = pipelines_of(ledger, register, Board(), "auto")
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    (_, plan), (_, review) = made.stages
    assert await ledger.stages.move(plan.id, "checking", "", came_from=("waiting",))
    await _plan_done(ledger, register, fleet, plan.id)
    await pipes.settled()
    assert await ledger.stages.move(plan.id, "passed", "auto", came_from=("checking",))
    assert (await _now(ledger, review)).state == "todo"
    assert await pipes.sweep() == 1
    await register.settled()
    started = await _now(ledger, review)
    assert started.state == "working" and started.runs
    assert "This is stage review of pipeline ship (mission login)" in started.body
    assert await pipes.sweep() == 0  # started once


async def test_task_start_of_a_stage_waiting_for_an_asking_gate_is_refused(
    ledger: Ledger, register: Register, fleet: Fleet
) -> None:
    """The plan's run is over and its `approve` gate asks: `task start` of the review is
    refused saying which gate it waits for; once approved, the review starts."""
    pipes = pipelines_of(ledger, register, Board(), "approve", fleet)
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    (_, plan), (_, review) = made.stages
    await _plan_done(ledger, register, fleet, plan.id)
    await pipes.settled()
    request = LaunchRequest("checker", prompt=prompt_of(review))
    with pytest.raises(TaskError, match=r"waits for stage plan \(task #1 plan-fix-it\), whose "
                       "gate asks an operator"):  # fmt: skip
        await register.start(review, request, None)
    assert (await _now(ledger, review)).state == "todo"
    await pipes.approve(made.mission, "op", "plan")
    await register.settled()
    assert (await _now(ledger, review)).state == "working"


async def test_the_last_stage_failed_with_its_task_open_is_ended_by_the_sweep(
    ledger: Ledger, register: Register, fleet: Fleet
) -> None:
    """The review's gate failed but the stop went no further, its task still working: the
    next start's sweep fails its task (its run stopped) and tells the operators, once."""
    pipes = pipelines_of(ledger, register, Board(), "auto")
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    (_, plan), (_, review) = made.stages
    await _plan_done(ledger, register, fleet, plan.id)
    await pipes.settled()
    await register.settled()
    assert (await _now(ledger, review)).state == "working"
    assert await ledger.stages.move(review.id, "failed", "denied by op", came_from=("waiting",))
    board = Board()
    again = pipelines_of(ledger, register, board, "auto")
    assert await again.sweep() == 1
    assert (await _now(ledger, review)).state == "failed"
    assert [name for name, _ in fleet.stopped] == ["checker"]
    assert len(board.posted) == 1
    assert "Mission login stopped at stage **review**" in board.posted[0].markdown
    assert await again.sweep() == 0 and len(board.posted) == 1
