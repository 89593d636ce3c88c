"""What holds a line from landing by the pipelines' gates taken on it
(:mod:`fleet.repos.landing.gated`, through :class:`ApprovalHold`): a tip no gate passed is
refused — a pass of an earlier commit, an ask still open, a failed check — naming the gate,
its commit and the fix; the commit a gate passed, a line only ``auto`` gates judged and a
line no gate was taken on hold nothing. Over a real ledger for the stages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from fleet.ledger import Ledger
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask
from fleet.ledger.stores.work.stages import GateState, NewStage, StageRecord
from fleet.repos.landing.approval import ApprovalHold, Unapproved
from fleet.repos.landing.gated import GateRecords, ungated

A = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
B = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LINE = LineRecord(7, "app", "coder", 1, "fw/coder/1", "main", "0" * 40, "/w", LineState.LIVE, T0)


def _stage(gate: str | list[str], state: GateState, commit: str, why: str = "") -> StageRecord:
    return StageRecord(1, 1, "ship", "code", 0, gate, 0.0, state, why, LINE.id, commit)


def test_a_tip_after_a_passed_gate_is_refused_naming_the_gate_and_the_fix() -> None:
    """Approved at A, tip B: refused with B, the gate and A, the ask again and the fix."""
    why = ungated(LINE, B, [_stage("approve", "passed", A)], {1: "m"}, "merge")
    assert why is not None
    assert why.startswith("fw/coder/1 of app is at 9f8e7d6c5b4a, which no gate passed: ")
    assert "the approve gate of stage code of mission m passed commit a1b2c3d4e5f6" in why
    assert "asked again on 9f8e7d6c5b4a" in why and "Nothing was merged" in why
    assert "an admin's `merge --unreviewed fw/coder/1` lands it as it is" in why
    checked = ungated(LINE, B, [_stage(["make", "test"], "passed", A)], {1: "m"}, "push")
    assert checked is not None and "checked again on 9f8e7d6c5b4a" in checked
    assert "Nothing was pushed" in checked and "`push --unreviewed fw/coder/1`" in checked


def test_an_open_ask_and_a_failed_check_hold_their_own_commit_too() -> None:
    """An ask of the tip says the approve that passes it; a failed check holds its commit."""
    asking = ungated(LINE, A, [_stage("approve", "asking", A)], {1: "m"}, "merge")
    assert asking is not None and "`mission approve m code` passes it" in asking
    failed = _stage(["make"], "failed", A, "its check `make` exited 2")
    why = ungated(LINE, A, [failed], {1: "m"}, "merge")
    assert why is not None and "is failed at commit a1b2c3d4e5f6 (its check `make` exited 2)" in why


def test_only_a_pass_of_the_tip_or_no_judging_gate_lets_it_land() -> None:
    """The commit passed lands; ``auto`` alone, no stage, no tip: nothing holds."""
    assert ungated(LINE, A, [_stage("approve", "passed", A)], {}, "merge") is None
    assert ungated(LINE, B, [_stage("auto", "passed", A)], {}, "merge") is None
    assert ungated(LINE, B, [], {}, "merge") is None
    assert ungated(LINE, None, [_stage("approve", "passed", A)], {}, "merge") is None


def test_an_auto_stage_passing_a_later_commit_does_not_land_it() -> None:
    """An ``auto`` stage sharing an approved line passes B: B is still held, said why."""
    later = [_stage("approve", "passed", A), replace(_stage("auto", "passed", B), task_id=2)]
    why = ungated(LINE, B, later, {1: "m"}, "merge")
    assert why is not None and "which no gate passed" in why
    assert "only the auto gate of stage code passed it, and an auto gate judges nothing" in why
    assert "the approve gate of stage code of mission m is at commit a1b2c3d4e5f6" in why
    assert "`merge --unreviewed fw/coder/1`" in why
    judged = [*later, replace(_stage(["make"], "passed", B), task_id=3)]
    assert ungated(LINE, B, judged, {1: "m"}, "merge") is None  # a check of the line passed B


async def test_the_hold_reads_the_gates_taken_on_the_line(ledger: Ledger) -> None:
    """A stage's gate recorded on the line in the ledger holds `merge` and every push."""
    mission = await ledger.missions.add_mission("m", "ship it", "op")
    assert mission is not None
    task = await ledger.tasks.add_task(
        NewTask("code: ship it", "chat", "op", mission=mission.id), NO_PROJECTION
    )
    await ledger.stages.add_stages(mission.id, [NewStage(task.id, "ship", "code", "approve")])
    assert await ledger.stages.move(
        task.id, "asking", "asked", came_from=("waiting",), at=(LINE.id, A)
    )
    assert await ledger.stages.move(task.id, "passed", "approved", came_from=("asking",), was=A)
    assert not await ledger.stages.move(task.id, "asking", "x", came_from=("passed",), was=B)
    gates = GateRecords(ledger.stages, ledger.missions)
    held = ApprovalHold(ledger.reviews, lambda repo: None, None, gates)
    assert await held.why_not(LINE, A, "merge") is None
    why = await held.why_not(LINE, B, "merge")
    assert why is not None and "stage code of mission m passed commit a1b2c3d4e5f6" in why
    with pytest.raises(Unapproved, match="which no gate passed"):
        await held.may_push(LINE, B, draft=True)
    await held.may_push(LINE, A, draft=False)
