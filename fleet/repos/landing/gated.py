"""A gate is of a commit: a line a pipeline's stage worked on, whose gate judged it
(``approve``, ``check:``), lands — ``merge``, ``push`` — only at a commit a gate of that
line passed. A later commit on it (a restarted run's, a hand push through the door) is
not what was approved or checked: :func:`ungated` says why it is held, and the stage's
gate is taken again on the new tip (:mod:`fleet.pipelines.flow`); an admin's
``--unreviewed`` lands it as it is, audited.

A line no stage's gate was taken on is held by nothing here; one whose only stages pass
``auto`` neither (an ``auto`` gate judges nothing). For the same reason an ``auto`` stage's
pass never covers a tip of a line a judging gate holds: a later ``auto`` stage sharing the
line commits past what was approved or checked, and that commit is held like any other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fleet.ledger.records.lines import LineRecord
from fleet.ledger.stores.work.missions import MissionsStore
from fleet.ledger.stores.work.stages import StageRecord, StagesStore


@dataclass(frozen=True, slots=True)
class GateRecords:
    """Where the gates of pipelines' stages are kept: the stages and their missions."""

    stages: StagesStore
    missions: MissionsStore

    async def of_line(self, line: LineRecord) -> tuple[list[StageRecord], dict[int, str]]:
        """The stages whose gates were taken on ``line``, and their missions' names."""
        stages = await self.stages.of_line(line.id)
        names: dict[int, str] = {}
        for mission_id in {s.mission_id for s in stages}:
            found = await self.missions.mission(mission_id)
            names[mission_id] = f"#{mission_id}" if found is None else found.name
        return stages, names


def _gate(stage: StageRecord) -> str:
    return "approve" if stage.gate == "approve" else "check"


def ungated(
    line: LineRecord,
    tip: str | None,
    stages: Sequence[StageRecord],
    missions: Mapping[int, str],
    verb: str,
) -> str | None:
    """Why ``verb`` (``merge``, ``push``) may not act on ``line`` at ``tip``: a stage's
    gate judged the line (``stages``, oldest first; ``missions``: their names) and no gate
    passed ``tip`` — the reason, what goes on and the fix; ``None``: nothing holds it."""
    judging = [s for s in stages if s.judges]
    if not judging or tip is None:
        return None
    if any(s.gate_state == "passed" and s.commit == tip for s in judging):
        return None
    last = judging[-1]
    mission = missions.get(last.mission_id, f"#{last.mission_id}")
    named = f"stage {last.stage} of mission {mission}"
    auto = [s for s in stages if not s.judges and s.gate_state == "passed" and s.commit == tip]
    if auto:
        then = (
            f"only the auto gate of stage {auto[-1].stage} passed it, and an auto gate judges "
            f"nothing; the {_gate(last)} gate of {named} is at commit "
            f"{last.commit[:12] or 'none yet'}"
        )
    else:
        then = _then(last, named, mission, tip, verb)
    done = "merged" if verb == "merge" else "pushed"
    return (
        f"{line.branch} of {line.repo} is at {tip[:12]}, which no gate passed: {then}. "
        f"Nothing was {done}. `diff {line.branch}` shows it; an admin's "
        f"`{verb} --unreviewed {line.branch}` {'lands' if verb == 'merge' else 'pushes'} "
        "it as it is, in the audit trail."
    )


def _then(stage: StageRecord, named: str, mission: str, tip: str, verb: str) -> str:
    kind, at = _gate(stage), stage.commit[:12] or "none yet"
    if stage.gate_state == "passed":
        again = "asked again" if kind == "approve" else "checked again"
        return (
            f"the {kind} gate of {named} passed commit {at}, and a later commit came after "
            f"it; the gate is {again} on {tip[:12]}: {verb} it once that passes"
        )
    if stage.gate_state == "asking":
        if stage.commit == tip:
            return (
                f"the approve gate of {named} asks an operator about it: "
                f"`mission approve {mission} {stage.stage}` passes it"
            )
        return (
            f"the approve gate of {named} asked about commit {at}; it is asked again on "
            f"{tip[:12]}: {verb} it once that is approved"
        )
    if stage.gate_state in ("waiting", "checking"):
        return f"the {kind} gate of {named} is still to pass it: {verb} it once it has"
    said = stage.why.split("\n", 1)[0][:200]
    return f"the {kind} gate of {named} is {stage.gate_state} at commit {at} ({said})"
