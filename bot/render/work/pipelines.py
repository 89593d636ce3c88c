"""Pure renderers of a mission made from a pipeline: what ``mission new --pipeline``
answers, its stages as ``mission M`` shows them (each with its task, agent, state and
gate), and what ``mission approve`` / ``mission deny`` answer. A gate's reason may hold
what an agent's checkout printed: only its first line is shown, escaped."""

from __future__ import annotations

from collections.abc import Sequence

from bot.render.work.tasks import named
from bot.text.agent_text import said
from fleet.ledger.records.tasks import TaskRecord
from fleet.ledger.stores.work.stages import StageRecord
from fleet.pipelines.making import Made
from fleet.pipelines.schema import gate_shown

_GATE_WORDS = {
    "waiting": "to come",
    "checking": "checking now",
    "asking": "asks an operator",
    "passed": "passed",
    "failed": "failed",
    "stopped": "never started",
}


def made(found: Made, pipeline: str) -> str:
    """What ``mission new NAME --pipeline P`` answers."""
    mission = found.mission
    stages = " → ".join(f"{stage} ({named(task)}, {said(task.agent or '', 40)})"
                        for stage, task in found.stages)  # fmt: skip
    first = ", ".join(found.started)
    return (
        f"Mission {said(mission.name, 40)} made from pipeline {said(pipeline, 40)}: {stages}. "
        f"Starting {first}; each next stage starts once the stages it waits for pass their "
        f"gates. `mission {mission.name}` shows them."
    )


def stages(rows: Sequence[tuple[StageRecord, TaskRecord | None]]) -> str:
    """The stages of a mission, in order: ``- plan · #1 plan-x · planner · done · gate auto:
    passed``."""
    if not rows:
        return ""
    lines = [f"Stages of pipeline {said(rows[0][0].pipeline, 40)}:"]
    for stage, task in rows:
        who = (
            "gone"
            if task is None
            else f"{named(task)} · {said(task.agent or '', 40)} · {task.state}"
        )
        word = _GATE_WORDS[stage.gate_state]
        if stage.gate_state == "stopped" and task is not None and task.runs:
            word = "stopped under way"  # it ran beside the stage whose gate failed
        gate = f"gate {said(gate_shown(stage.gate), 120)}: {word}"
        why = stage.why.split("\n", 1)[0]
        if why and stage.gate_state in ("passed", "failed", "stopped", "waiting", "asking"):
            gate += f" ({said(why, 200)})"
        lines.append(f"- {said(stage.stage, 40)} · {who} · {gate}")
    return "\n".join(lines)


def answered(stage: StageRecord, mission: str, approved: bool) -> str:
    """What ``mission approve`` / ``mission deny`` answer."""
    if approved:
        return (
            f"Stage {said(stage.stage, 40)} of mission {said(mission, 40)} passed its gate: "
            "what comes next starts."
        )
    return (
        f"Stage {said(stage.stage, 40)} of mission {said(mission, 40)} was denied: the mission "
        "stops there."
    )
