"""The pacing report as a cron job: have it composed (text and chart) and post it to the
home rooms. What the report says and draws is the bot's (:mod:`bot.render.spend.report`)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from fleet.notices import Notice
from scheduler.context import JobContext
from scheduler.errors import ReportNotPosted

log = logging.getLogger(__name__)

REPORT_JOB_ID: Final = "pacing-report"
REPORT_JOB_REF: Final = "scheduler.report_job:report_job"


REPORT_GRACE: Final = timedelta(hours=1)
"""How late a report due may still be posted (a job fired late, one missed while no
orchestrator ran): the scheduler's misfire grace."""


async def report_job(ctx: JobContext) -> Notice | None:
    """Compose the report due now and post it — unless it was posted already (by another
    orchestrator of the ledger, or before a restart): ``None`` then. Raises
    :class:`ReportNotPosted` naming every connector that could not take it (the others
    still got it)."""
    if not await ctx.pacing.reports.claim(ctx.clock.now(), REPORT_GRACE):
        log.info("pacing report: the one due now was posted already")
        return None
    report = await ctx.pacing.reports.pacing_report()
    delivery = await ctx.notices.post(report)
    if not delivery.ok:
        raise ReportNotPosted("the pacing report was not posted on " + "; ".join(delivery.failed))
    log.info("pacing report posted with %d chart(s)", len(report.images))
    return report
