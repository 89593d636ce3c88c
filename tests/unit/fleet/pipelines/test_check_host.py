"""A `check:` gate runs only where its checkout is this machine's (fleet.pipelines.flow): a
stage whose agent's line lies on an SSH host fails its check, saying so, and nothing runs
here; the same line on this machine is checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.pipelines.schema import PipelineEntry
from fleet.tasks.register import Register
from tests import sandbox_need
from tests.unit.fleet.pipelines.test_flow import TIP, WHERE, Board, _plan_done, pipelines_of
from tests.unit.fleet.pipelines.test_gates import AGENT_UID
from tests.unit.fleet.tasks.test_ledger_register import Fleet

pytestmark = [sandbox_need.BWRAP]

CHECKED = PipelineEntry.model_validate(
    {
        "stages": {
            "plan": {"agent": "planner", "gate": {"check": ["touch", "ran"]}},
            "review": {"role": "reviewer", "gate": "auto"},
        }
    }
)


@pytest.mark.parametrize(("host", "passed"), [("box2", False), ("local", True)])
async def test_a_check_on_a_line_elsewhere_is_refused(
    ledger: Ledger, register: Register, fleet: Fleet, tmp_path: Path, host: str, passed: bool
) -> None:
    """The planner's line on host box2 fails the plan's check, told why, and the check never
    ran; on this machine the same check runs in its checkout and passes."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    if os.geteuid() == 0:
        os.chown(checkout, AGENT_UID, AGENT_UID)
    board = Board()
    pipes = pipelines_of(ledger, register, board, "auto")
    pipes._making._pipelines = lambda: {"ship": CHECKED}
    made = await pipes.make("login", "ship", "Fix it", by="op", source="chat", asked_in=WHERE)
    (_, plan), _ = made.stages
    await register.settled()
    started = await ledger.tasks.task(plan.id)
    assert started is not None and started.runs
    line = await ledger.lines.add_line(
        repo="app", agent="planner", branch="fw/planner/1", base_ref="main", fork_sha="0" * 40,
        checkout=str(checkout), host=host,
    )  # fmt: skip
    await ledger.lines.line_ran(line, started.runs[-1])
    await _plan_done(ledger, register, fleet, plan.id)
    await pipes.settled()
    stage = await ledger.stages.stage_of(plan.id)
    assert stage is not None
    assert (checkout / "ran").exists() is passed
    if passed:
        why = f"check `touch ran` exited 0 on commit {TIP[:12]}"
        assert (stage.gate_state, stage.why, stage.commit) == ("passed", why, TIP)
    else:
        assert stage.gate_state == "failed"
        assert "the agent left no line on this machine" in stage.why
