"""Deferred launches: a ``spawn`` that a queued budget turned away is run again, as the
same person in the same room, when the queue is expected to clear.

The handler asks the bot to defer; it arms a one-off job at that time whose arguments are
plain data (connector, sender, room, the command's text); the job hands them to the
context's :class:`~scheduler.context.DeferredRunner`, which runs the text through the
router as if it were typed again — ACL as of then, audited with source ``deferred``. If
the budget is still queued then, the spawn is deferred again. Deferred launches live in
the scheduler's memory: a restart of Fleetwarden forgets them (the operator is told the
time, and can spawn again).
"""

from __future__ import annotations

from typing import Final

from scheduler.context import JobContext

DEFERRED_JOB_REF: Final = "scheduler.deferred:run_deferred"


async def run_deferred(
    ctx: JobContext, *, connector: str, sender: str, room: str, text: str, job: str
) -> None:
    """Run one deferred command (see the module docstring)."""
    await ctx.deferred.run_deferred(
        connector=connector, sender=sender, room=room, text=text, job=job
    )
