"""The register's fixtures: the runs' side, the fake fleet its launches go to, and the
register over an admission of no caps, its ``stop`` ending the agent's run as the real one
does."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.tasks.register import Register
from fleet.tasks.runs import TaskRuns
from tests.fakes.doubles.launches import an_admission
from tests.fakes.doubles.stores import task_runs_of
from tests.unit.fleet.tasks.test_ledger_register import Fleet


@pytest.fixture
def task_runs(ledger: Ledger) -> TaskRuns:
    return task_runs_of(ledger)


@pytest.fixture
def fleet(ledger: Ledger, tmp_path: Path, task_runs: TaskRuns) -> Fleet:
    return Fleet(ledger, tmp_path, task_runs)


@pytest.fixture
def register(ledger: Ledger, fleet: Fleet, task_runs: TaskRuns) -> Register:
    admission = an_admission(fleet, slots=None, budgets=None, tasks=task_runs)

    class Stopper:
        async def stop_agent(self, name: str, *, by: str = "operator") -> None:
            fleet.stopped.append((name, by))
            run = await ledger.runs.last_run(name)
            assert run is not None
            await fleet.end(name, run.id, "stopped")

    return Register(
        stop=Stopper(),
        tasks=ledger.tasks,
        missions=ledger.missions,
        actuals=ledger.actuals,
        runs=task_runs,
        admission=admission,
    )
