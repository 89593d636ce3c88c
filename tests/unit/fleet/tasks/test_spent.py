"""A task's spend line: its stored projection (in dollars, else tokens, else that there is
none) beside what its runs used, "so far" while it is open."""

from __future__ import annotations

from dataclasses import replace

from fleet.ledger.records.tasks import NO_PROJECTION, Actual, Projection, TaskRecord
from fleet.tasks.spent import NONE_YET, spend_line
from tests.unit.chat_fakes import T0

BASIS = "agent coder · repository app"


def task(projection: Projection = NO_PROJECTION, state: str = "working") -> TaskRecord:
    return TaskRecord(
        id=12, name="fix-login", title="Fix login", body="", source="forge", source_ref="",
        mission=None, agent="coder", runtime="claude", repo="app", state=state,  # type: ignore[arg-type]
        why="", asked_by="@alice on hub", forge_run=3, branch=None, pull_url=None,
        created_at=T0, updated_at=T0, started_at=None, ended_at=None, projection=projection,
    )  # fmt: skip


def test_a_priced_projection_beside_the_actual_so_far() -> None:
    projected = Projection(BASIS, (1, 2, 3, 4, 5), (30_000.0, 80_000.0), (0.4, 0.9))
    line = spend_line(task(projected), Actual(41_200, 0.31, 2))
    assert line == (
        "Task #12: projected $0.40 (p90 $0.90) from 5 past tasks (agent coder · repository "
        "app) · actual so far $0.31 (41,200 tokens)"
    )


def test_tokens_when_unpriced_and_none_when_nothing_finished() -> None:
    one = Projection(BASIS, (7,), (12_345.0, 12_345.0), None)
    assert spend_line(task(one), Actual(900, None, 1)) == (
        "Task #12: projected 12,345 tokens (p90 12,345) from 1 past task (agent coder · "
        "repository app) · actual so far 900 tokens (not priced)"
    )
    ended = replace(task(), state="done")
    assert spend_line(ended, Actual(0, 0.0, 0)) == f"Task #12: {NONE_YET} · actual $0.00 (0 tokens)"
    assert NONE_YET == "no projection: no finished task of its kind yet"
