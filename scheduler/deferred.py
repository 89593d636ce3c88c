"""Deferred launches: a ``spawn`` that a queued budget turned away is run again, as the
same person in the same room, when the queue is expected to clear.

The handler asks the app to defer; the app arms a one-off job at that time whose
arguments are plain data (connector, sender, room, the command's text); the job hands them
to the :class:`DeferredRunner` registered under ``runner``, which runs the text through the
router as if it were typed again — ACL as of then, audited with source ``deferred``. If
the budget is still queued then, the spawn is deferred again. Deferred launches live in
the scheduler's memory: a restart of Fleetwarden forgets them (the operator is told the
time, and can spawn again).
"""

from __future__ import annotations

from typing import Final, Protocol, runtime_checkable

from scheduler import jobs
from scheduler.jobs import SchedulerError

DEFERRED_JOB_REF: Final = "scheduler.deferred:run_deferred"


@runtime_checkable
class DeferredRunner(Protocol):
    async def run_deferred(
        self, *, connector: str, sender: str, room: str, text: str, job: str
    ) -> None: ...


async def run_deferred(
    *, runner: str, connector: str, sender: str, room: str, text: str, job: str
) -> None:
    """Run one deferred command (see the module docstring)."""
    target = jobs.context(runner)
    if not isinstance(target, DeferredRunner):
        raise SchedulerError(f"context {runner!r} is a {type(target).__name__}, not a runner")
    await target.run_deferred(connector=connector, sender=sender, room=room, text=text, job=job)
