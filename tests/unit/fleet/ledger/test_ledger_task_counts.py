"""The register's tasks counted by state, on SQLite and PostgreSQL: every state present, a
mission's count only its own tasks."""

from __future__ import annotations

from fleet.ledger import Ledger
from fleet.ledger.records.tasks import NO_PROJECTION, TASK_STATES, NewTask


async def test_tasks_are_counted_in_every_state_and_by_mission(ledger: Ledger) -> None:
    assert await ledger.tasks.counts() == dict.fromkeys(TASK_STATES, 0)
    release = await ledger.missions.add_mission("release", "", "op")
    assert release is not None
    for state in ("todo", "todo", "working", "done"):
        made = await ledger.tasks.add_task(
            NewTask("t", "chat", "op", mission=release.id), NO_PROJECTION
        )
        await ledger.tasks.move(made.id, state)
    await ledger.tasks.add_task(NewTask("u", "chat", "op"), NO_PROJECTION)
    counts = await ledger.tasks.counts()
    assert list(counts) == list(TASK_STATES)
    assert (counts["todo"], counts["working"], counts["done"], counts["failed"]) == (3, 1, 1, 0)
    mine = await ledger.tasks.counts(missions=[release.id])
    assert (mine["todo"], mine["working"], mine["done"]) == (2, 1, 1)
    assert await ledger.tasks.counts(missions=[]) == dict.fromkeys(TASK_STATES, 0)
