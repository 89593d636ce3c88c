"""Which stage of a mission an operator's ``mission approve M [STAGE]`` / ``mission deny M
[STAGE]`` answers: the stage named, which must be asking; with none named, the one stage
asking — more than one asking, the operator must name it (the ask's notice quotes the
whole command, its stage in it, so the answer is tied to the stage that was shown); what
an answer typed before its stage's gate asks is told instead (the stage at work, whose run
ends it); what a yes to the last stage says (the mission done, the ``merge`` that lands
its change); and why ``task start`` of a stage is refused while a stage before it is not
through its gate."""

from __future__ import annotations

from collections.abc import Sequence

from fleet.ledger.records.tasks import TaskRecord
from fleet.ledger.stores.work.stages import StageRecord, StagesStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.tasks.register import TaskError, shown


def asked(
    mission: str,
    stage: str,
    named: str,
    again: str = "",
    *,
    last: bool = False,
    branch: str | None = None,
) -> str:
    """The notice that ``stage`` of ``mission`` (its task ``named``: its change and the
    commit asked about) asks an operator; ``again``: why it is asked again; ``last``: no
    stage comes after it, so a yes ends the mission (nothing is merged by it); ``branch``:
    where the change asked about is (``None``: on no branch known here)."""
    lead = f"{again}. " if again else ""
    then = f"and the mission is done: {landing(branch)}" if last else "and starts what comes next"
    return (
        f"Mission {mission}: {lead}stage **{stage}** ({named}) is over and its gate asks an "
        f"operator. `mission approve {mission} {stage}` approves that commit {then}; "
        f"`mission deny {mission} {stage}` stops the mission."
    )


def landing(branch: str | None) -> str:
    """Where a done mission's change waits, and the command that lands it."""
    if branch is None:
        return "no stage left a change on a branch to land"
    return f"its change stays on {branch} for you to land: `merge {branch}`"


def done(mission: str, stage: str, branch: str | None) -> str:
    """The answer to ``mission approve`` of ``mission``'s last ``stage``: the mission is
    done, nothing comes next, and where its change waits (``branch``) for a ``merge``."""
    return (
        f"Stage {stage} of mission {mission} passed its gate, the last: the mission "
        f"is done and nothing comes next; {landing(branch)}."
    )


def meanwhile(mission: str, stage: StageRecord) -> str:
    """The refusal of an answer to ``stage`` of ``mission``, answered by another first."""
    return f"mission {mission}'s stage {stage.stage} was answered meanwhile"


def stale(mission: str, stage: StageRecord, tip: str) -> str:
    """The refusal of ``mission approve`` of ``stage``, asked about a commit its line has
    moved past to ``tip``: the sha now, and how to approve it."""
    return (
        f"stage {stage.stage} of mission {mission} was asked about commit "
        f"{stage.commit[:12]}, and its line is at {tip[:12]} now: nothing was approved. It "
        f"is asked again on {tip[:12]} (`diff` of its branch shows it): "
        f"`mission approve {mission} {stage.stage}` approves {tip[:12]}"
    )


def answering(
    stages: Sequence[StageRecord], mission: str, named: str | None, verb: str
) -> StageRecord:
    """The stage of ``stages`` (``mission``'s) that ``mission VERB mission [named]``
    answers, else a :class:`TaskError` saying what to type."""
    asking = [stage for stage in stages if stage.gate_state == "asking"]
    if named is not None:
        found = next((stage for stage in stages if stage.stage == named), None)
        if found is None:
            listed = ", ".join(stage.stage for stage in stages) or "none"
            shown = named if len(named) <= 40 else named[:37] + "..."
            raise TaskError(f"mission {mission} has no stage {shown!r}: its stages are {listed}")
        if found.gate_state != "asking":
            raise TaskError(
                f"stage {found.stage} of mission {mission} asks no answer: its gate is "
                f"{found.gate_state}{_others(asking, mission, verb)}"
            )
        return found
    if not asking:
        raise TaskError(
            f"no stage of mission {mission} waits for an operator's answer: "
            f"`mission {mission}` shows its stages"
        )
    if len(asking) > 1:
        listed = ", ".join(stage.stage for stage in asking)
        raise TaskError(
            f"stages {listed} of mission {mission} each ask an answer: name the one you "
            f"answer, e.g. `mission {verb} {mission} {asking[0].stage}`"
        )
    return asking[0]


async def answering_now(
    tasks: TasksStore, stages: Sequence[StageRecord], mission: str, named: str | None, verb: str
) -> StageRecord:
    """:func:`answering`; with none asking and no stage named — or one named whose gate
    is not taken yet (it has not run, or runs now) — a :class:`TaskError` saying what the
    mission waits for now (:func:`nothing_asks`)."""
    found = next((stage for stage in stages if stage.stage == named), None)
    early = named is None or (found is not None and found.gate_state == "waiting")
    if not early or any(stage.gate_state == "asking" for stage in stages):
        return answering(stages, mission, named, verb)
    raise TaskError(await nothing_asks(tasks, stages, mission, verb))


async def nothing_asks(
    tasks: TasksStore, stages: Sequence[StageRecord], mission: str, verb: str
) -> str:
    """Why ``mission VERB`` has nothing to answer yet: which stage is at work now (and whose
    run must end first), or that the mission is through or stopped; and which stage's gate
    will ask."""
    head = f"no stage of mission {mission} waits for an operator's answer yet"
    ordered = sorted(stages, key=lambda stage: stage.position)
    now = next((stage for stage in ordered if stage.gate_state != "passed"), None)
    if now is None:
        return f"{head}: its stages are all through (`mission {mission}` shows them)"
    if now.gate_state in ("failed", "stopped"):
        return f"{head}: it stopped at stage {now.stage} (`mission {mission}` shows why)"
    task = await tasks.task(now.task_id)
    named = f"stage {now.stage}" + (f" (task {shown(task)})" if task is not None else "")
    if now.gate_state == "checking":
        said = f"{named} is being checked by its gate"
    elif task is None or task.state in ("todo", "queued"):
        said = f"{named} has not started yet"
    elif task.state == "working" and task.agent:
        said = (
            f"{named} runs now: its gate is taken once {task.agent}'s run ends (a `stub` "
            f"agent's ends with `send {task.agent} exit`)"
        )
    else:
        said = f"{named} is {task.state}"
    asking = next((s for s in ordered[ordered.index(now) :] if s.gate == "approve"), None)
    if asking is None:
        return f"{head}: {said}; no stage left has a gate that asks an operator"
    return (
        f"{head}: {said}. Stage {asking.stage}'s gate asks an operator once its run ends; "
        f"`mission {verb} {mission} {asking.stage}` answers it then"
    )


def _others(asking: Sequence[StageRecord], mission: str, verb: str) -> str:
    if not asking:
        return ""
    return "; " + " or ".join(f"`mission {verb} {mission} {s.stage}`" for s in asking)


async def held(stages: StagesStore, task: TaskRecord, after: Sequence[TaskRecord]) -> str | None:
    """Why ``task``, a stage waiting for ``after``, may not start: one of their stages is
    not through its gate (``None``: it may, or it is no pipeline's)."""
    if not after or await stages.stage_of(task.id) is None:
        return None
    before = await stages.of_tasks([t.id for t in after])
    for prior in after:
        stage = before.get(prior.id)
        if stage is None or stage.gate_state == "passed":
            continue
        state = {"asking": "asks an operator", "checking": "is being checked"}.get(
            stage.gate_state, f"is {stage.gate_state}"
        )
        how = "; `mission approve` answers it" if stage.gate_state == "asking" else ""
        return (
            f"task {shown(task)} is a stage of a pipeline and waits for stage {stage.stage} "
            f"(task {shown(prior)}), whose gate {state}: it starts once that gate passes{how}"
        )
    return None
