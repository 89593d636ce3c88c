"""fleet.timing.debounce: work run at once after a change, at most once an interval however many
changes come, nothing while nothing changed, and nothing left running after stop."""

from __future__ import annotations

import asyncio

import pytest

from fleet.timing.debounce import Debounced
from tests.polling import eventually


class Work:
    def __init__(self, *, failing: bool = False) -> None:
        self.runs = 0
        self.failing = failing

    async def __call__(self) -> None:
        self.runs += 1
        if self.failing:
            raise OSError("the ledger is away")


async def test_changes_within_the_interval_make_one_more_run() -> None:
    """The first poke runs at once; the pokes within the interval, one run when it ends."""
    work = Work()
    debounced = Debounced(work, 0.2, name="test", failure="failed")
    debounced.start()
    debounced.poke()
    await eventually(lambda: work.runs == 1, "the first run")
    for _ in range(5):
        debounced.poke()
    await asyncio.sleep(0.05)
    assert work.runs == 1  # within the interval: waits
    await eventually(lambda: work.runs == 2, "the run after the interval")
    await asyncio.sleep(0.3)
    assert work.runs == 2  # nothing changed since: nothing runs
    await debounced.stop()


async def test_a_poke_before_start_runs_at_start_and_none_after_stop() -> None:
    """A change made before start is run once started; after stop nothing runs and no task
    is left."""
    work = Work()
    debounced = Debounced(work, 0.05, name="test", failure="failed")
    debounced.poke()  # no loop needed before start
    debounced.start()
    await eventually(lambda: work.runs == 1, "the run at start")
    await debounced.stop()
    debounced.poke()
    await asyncio.sleep(0.1)
    assert work.runs == 1
    assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()


async def test_a_failing_run_is_logged_and_the_next_change_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failure does not end the debouncing: it is logged, and the next poke runs."""
    work = Work(failing=True)
    debounced = Debounced(work, 0.01, name="test", failure="could not write")
    debounced.start()
    debounced.poke()
    await eventually(lambda: work.runs == 1, "the failing run")
    await asyncio.sleep(0.05)
    debounced.poke()
    await eventually(lambda: work.runs == 2, "the run after the failure")
    await debounced.stop()
    assert "could not write" in caplog.text
