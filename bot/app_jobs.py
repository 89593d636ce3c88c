"""The app's own scheduled jobs: which run, and when — the watchdog sweep, the pacing tick,
the ledger's pruning, the spawn queue's sweep, approval timeouts and the daily pacing report."""

from __future__ import annotations

from bot.config import Config
from scheduler.approvals_job import APPROVALS_JOB_ID, APPROVALS_JOB_REF, EXPIRE_EVERY
from scheduler.context import JobContext
from scheduler.jobs import FleetScheduler
from scheduler.maintenance import PRUNE_EVERY, PRUNE_JOB_ID, PRUNE_JOB_REF
from scheduler.pacing_job import PACING_JOB_ID, PACING_JOB_REF
from scheduler.queue_job import SPAWN_QUEUE_JOB_ID, SPAWN_QUEUE_JOB_REF, SWEEP_EVERY
from scheduler.report_job import REPORT_JOB_ID, REPORT_JOB_REF
from scheduler.watchdog_job import WATCHDOG_JOB_ID, WATCHDOG_JOB_REF

REPORT_MISFIRE_GRACE = 3600
"""Seconds late the daily report may still run (after a restart across its time)."""


def add_app_jobs(scheduler: FleetScheduler[JobContext], cfg: Config) -> None:
    """Register the app's jobs on ``scheduler``, at the intervals ``cfg`` sets."""
    scheduler.add_interval(
        WATCHDOG_JOB_ID, WATCHDOG_JOB_REF, cfg.defaults.watchdog_interval_seconds
    )
    scheduler.add_interval(PACING_JOB_ID, PACING_JOB_REF, cfg.pacing.tick_seconds)
    scheduler.add_interval(PRUNE_JOB_ID, PRUNE_JOB_REF, PRUNE_EVERY)
    scheduler.add_interval(SPAWN_QUEUE_JOB_ID, SPAWN_QUEUE_JOB_REF, SWEEP_EVERY)
    scheduler.add_interval(APPROVALS_JOB_ID, APPROVALS_JOB_REF, EXPIRE_EVERY)
    scheduler.add_cron(
        REPORT_JOB_ID,
        REPORT_JOB_REF,
        cfg.pacing.report_cron,
        timezone=cfg.timezone,
        misfire_grace_time=REPORT_MISFIRE_GRACE,
    )
