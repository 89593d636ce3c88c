"""The pacing tick as an APScheduler job: recompute every budget, update the proxy's
policy, post the ladder steps that changed (once each, not per request), and make sure a
tick also runs right after the next window reset.

The app registers a :class:`PacingDesk` under a context name; the job receives the name
(see :mod:`scheduler.jobs` for why jobs take names, not objects).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final, Protocol, runtime_checkable

from scheduler import jobs
from scheduler.budget_model import Transition
from scheduler.jobs import SchedulerError

log = logging.getLogger(__name__)

PACING_JOB_ID: Final = "pacing-tick"
RESET_JOB_ID: Final = "pacing-window-reset"
PACING_JOB_REF: Final = "scheduler.pacing_job:pacing_tick"
PACING_CONTEXT: Final = "pacing"
RESET_DELAY: Final = timedelta(seconds=1)  # tick just after a window ends, not at it


@runtime_checkable
class PacingDesk(Protocol):
    """What the tick needs: the budgets, a way to post, and the scheduler for the reset."""

    async def tick(self) -> list[Transition]: ...

    def next_reset(self) -> datetime | None: ...

    async def post_transition(self, transition: Transition) -> None: ...

    def schedule_reset(self, at: datetime) -> None: ...


async def pacing_tick(*, context: str = PACING_CONTEXT) -> Sequence[Transition]:
    """One tick: recompute, post what changed, re-arm the reset job."""
    desk = jobs.context(context)
    if not isinstance(desk, PacingDesk):
        raise SchedulerError(f"context {context!r} is a {type(desk).__name__}, not a pacing desk")
    transitions = await desk.tick()
    for transition in transitions:
        try:
            await desk.post_transition(transition)
        except Exception:
            log.exception("could not post a pacing change for %s", transition.budget)
    reset = desk.next_reset()
    if reset is not None:
        desk.schedule_reset(reset + RESET_DELAY)
    return transitions
