"""A review agent kept busy by the agent whose work it would review: its live run woken
by that agent's message (``wake: start``), started on a task that agent handed it, or
given that agent's words while it runs. A round asked then cannot start (the agent runs
already) — and must not look like a reviewer merely busy elsewhere: the author would keep
every review away by keeping its reviewer at work. The round ends at once, saying so
(:data:`BUSY`), and the work goes to a human as in every other ending without a verdict
(:meth:`fleet.peers.review.stage.ReviewStage.begin`); a round never waits for its
reviewer to be free."""

from __future__ import annotations

from typing import Final

from fleet.peers.review.handoff import ReviewStores

BUSY: Final = "no verdict: the reviewer is busy with the author's work"
"""What a round ends with when its review agent runs on work its author gave it."""


async def busy_with_author(stores: ReviewStores, reviewer: str, author: str) -> str | None:
    """Why ``reviewer``'s run going now is ``author``'s work — :data:`BUSY` and how — or
    ``None`` (it does not run, or runs on work the author had no hand in)."""
    run = await stores.runs.last_run(reviewer)
    if run is None or run.ended_at is not None:
        return None
    message = await stores.messages.first_into(run.id, author)
    if message is not None:
        what = f"task #{message.task_id}" if message.kind == "task" else f"message #{message.id}"
        return f"{BUSY} ({reviewer}'s run {run.id} took {author}'s {what})"
    task_id = await stores.tasks.task_of_run(run.id)
    task = None if task_id is None else await stores.tasks.task(task_id)
    if task is not None and task.asked_by == f"agent {author}":
        return f"{BUSY} ({reviewer}'s run {run.id} works on task #{task.id}, handed on by {author})"
    return None
