"""The pacing tick as a job: recompute every budget's status, move the proxy's policy, post
the ladder steps that changed (once each, not per request), and make sure a tick also runs
right after the next window reset."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Final

from fleet.budgets.model import Transition
from scheduler.context import JobContext

PACING_JOB_ID: Final = "pacing-tick"
RESET_JOB_ID: Final = "pacing-window-reset"
PACING_JOB_REF: Final = "scheduler.pacing_job:pacing_tick"
RESET_DELAY: Final = timedelta(seconds=1)  # tick just after a window ends, not at it


async def pacing_tick(ctx: JobContext) -> Sequence[Transition]:
    """One tick: recompute, post what changed, re-arm the reset job."""
    transitions = await ctx.pacing.budgets.tick()
    for transition in transitions:
        await ctx.notices.post(transition.notice())  # failures are logged by the board
    reset = ctx.pacing.budgets.next_reset()
    if reset is not None:
        ctx.scheduler.add_date(RESET_JOB_ID, PACING_JOB_REF, reset + RESET_DELAY)
    return transitions
