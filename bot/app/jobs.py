"""The app's scheduler phase (:func:`start_jobs`) and its own jobs: what they work with
(:func:`app_job_context`), which run, and when — the watchdog sweep, the pacing tick, the
ledger's pruning, the spawn queue's sweep, approval timeouts and the daily pacing
report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.app.commands import Commanded
from bot.app.fleet import Fleeted
from bot.app.ledger import Ledgered
from bot.app.spend import Spend
from bot.commands.handlers.accounts import AccountCommands
from bot.commands.handlers.schedules import ScheduledRuns
from bot.commands.handlers.spawn_queue import SpawnQueue
from bot.commands.router import Router
from bot.config import Config
from bot.render.report import PacingReports
from connectors.base import Connector
from fleet.approvals.service import Approvals
from fleet.budgets.service import BudgetService
from fleet.clock import Clock
from fleet.ledger import Ledger
from fleet.notices import NoticeBoard
from fleet.supervisor.fleet import Fleet
from scheduler.approvals_job import APPROVALS_JOB_ID, APPROVALS_JOB_REF, EXPIRE_EVERY
from scheduler.context import JobContext
from scheduler.jobs import FleetScheduler
from scheduler.maintenance import PRUNE_EVERY, PRUNE_JOB_ID, PRUNE_JOB_REF
from scheduler.pacing_job import PACING_JOB_ID, PACING_JOB_REF
from scheduler.queue_job import SPAWN_QUEUE_JOB_ID, SPAWN_QUEUE_JOB_REF, SWEEP_EVERY
from scheduler.report_job import REPORT_GRACE, REPORT_JOB_ID, REPORT_JOB_REF
from scheduler.watchdog_job import WATCHDOG_JOB_ID, WATCHDOG_JOB_REF


def app_job_context(
    cfg: Config,
    *,
    scheduler: FleetScheduler[JobContext],
    clock: Clock,
    ledger: Ledger,
    fleet: Fleet,
    budgets: BudgetService,
    notices: NoticeBoard,
    router: Router,
    queue: SpawnQueue,
    approvals: Approvals,
    reports_dir: Path,
    accounts_text: Callable[[], str | None],
    connector_named: Callable[[str], Connector | None],
) -> JobContext:
    """Every live collaborator of the app's jobs."""
    return JobContext(
        scheduler=scheduler,
        clock=clock,
        fleet=fleet,
        budgets=budgets,
        notices=notices,
        reports=PacingReports(
            budgets,
            reports_dir,
            accounts_text,
            claim=ledger.chat.claim_event,  # each report due posted once, by one orchestrator
            cron=(cfg.pacing.report_cron, cfg.timezone),
        ),
        upkeep=ledger.chat,
        schedules=ScheduledRuns(
            ledger=ledger,
            router=router,
            connector_named=connector_named,
            clock=clock,
            timezone=cfg.timezone,
        ),
        queue=queue,
        approvals=approvals,
    )


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
        misfire_grace_time=int(REPORT_GRACE.total_seconds()),  # the job's own grace
    )


def start_jobs(
    cfg: Config,
    *,
    ledgered: Ledgered,
    spend: Spend,
    fleeted: Fleeted,
    commanded: Commanded,
    clock: Clock,
    reports_dir: Path,
    connector_named: Callable[[str], Connector | None],
) -> JobContext:
    """The job context, the app's jobs, and the scheduler (made by the commands phase)
    running them."""
    scheduler = commanded.scheduler
    context = app_job_context(
        cfg,
        scheduler=scheduler,
        clock=clock,
        ledger=ledgered.ledger,
        fleet=fleeted.fleet,
        budgets=spend.budgets,
        notices=ledgered.notifier,
        router=commanded.commands.router,
        queue=commanded.commands.queue,
        approvals=ledgered.approvals,
        reports_dir=reports_dir,
        accounts_text=AccountCommands(spend.accounts).text,
        connector_named=connector_named,
    )
    add_app_jobs(scheduler, cfg)
    scheduler.start(context)
    return context
