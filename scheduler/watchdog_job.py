"""The watchdog as an interval job: snapshot the fleet, let :func:`fleet.watchdog.decisions.sweep`
decide, hand the actions back to the supervisor."""

from __future__ import annotations

import logging
from typing import Final

from fleet.watchdog.decisions import sweep
from fleet.watchdog.verdicts import Action
from scheduler.context import JobContext

log = logging.getLogger(__name__)

WATCHDOG_JOB_ID: Final = "watchdog"
WATCHDOG_JOB_REF: Final = "scheduler.watchdog_job:watchdog_tick"


async def watchdog_tick(ctx: JobContext) -> list[Action]:
    """One watchdog sweep: snapshot the fleet, decide, apply."""
    snapshot = await ctx.fleet.watchdog_snapshot()
    actions = sweep(snapshot.views, snapshot.now, snapshot.defaults)
    if actions:
        log.info("watchdog: %d action(s): %s", len(actions), ", ".join(map(_brief, actions)))
        await ctx.fleet.apply_watchdog(actions)
    return actions


def _brief(action: Action) -> str:
    return f"{type(action).__name__}({action.name})"
