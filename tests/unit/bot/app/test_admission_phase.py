"""Tests for the fleet phase's admission: made once, whole, before the fleet — a stage left
out of its chain keeps the app from starting, naming the stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app.lifecycle import App
from bot.app.phases.fleet import admission as fleet_phase
from bot.app.phases.fleet.admission import AdmissionParts
from bot.config import Config
from fleet.supervisor.admission.stages.chain import MissingStage, Stage
from fleet.timing.clock import SystemClock
from tests.unit.chat_fakes import FakeConnector


@pytest.mark.parametrize("left_out", ["naming", "ownership", "handoff", "budgets", "quote", "caps"])
async def test_a_stage_left_out_is_a_start_up_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, left_out: str
) -> None:
    """The fleet phase's chain without one stage: the app refuses to start, the error names
    the missing stage, and what had started is stopped (the state dir free again)."""
    whole = fleet_phase.admission_stages

    def without(parts: AdmissionParts) -> list[Stage]:
        return [stage for stage in whole(parts) if stage.name != left_out]

    monkeypatch.setattr(fleet_phase, "admission_stages", without)
    config = Config.default(tmp_path)
    app = App(config, clock=SystemClock(), environ={}, connectors=[FakeConnector()])
    with pytest.raises(MissingStage, match=f"the admission has no {left_out} stage"):
        await app.run()
    monkeypatch.setattr(fleet_phase, "admission_stages", whole)
    again = App(config, clock=SystemClock(), environ={}, connectors=[FakeConnector()])
    await again.start()
    try:
        assert await again.fleet.ps() == []
    finally:
        await again.stop()


async def test_the_app_admission_has_every_stage_in_order(tmp_path: Path) -> None:
    """The app's one admission, handed to the spawn queue, runs the whole chain in order."""
    app = App(Config.default(tmp_path), clock=SystemClock(), environ={}, connectors=[])
    await app.start()
    try:
        names = [stage.name for stage in app.queue.admission.stages]
        assert names == ["naming", "ownership", "handoff", "budgets", "quote", "caps"]
    finally:
        await app.stop()
