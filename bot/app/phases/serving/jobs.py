"""The app's scheduler phase (:func:`start_jobs`) and its own jobs: what they work with
(:func:`app_job_context`), which run, and when — the watchdog sweep, the pacing tick, the
ledger's pruning, the spawn queue's sweep, approval timeouts and the daily pacing
report — the forges' rounds (:func:`add_forge_jobs`) and what is looked at again and again
(:func:`add_looking_jobs`: the feed's logs, the dashboard's sessions, the hosts, the refused
egress)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.core.spend import Spend
from bot.app.phases.fleet.launching import Fleeted
from bot.app.phases.serving.commands import Commanded
from bot.commands.handlers.launches.schedules import ScheduledRuns
from bot.commands.handlers.spend.accounts import AccountCommands
from bot.config import Config
from bot.dashboard.serving.live import SESSIONS_EVERY
from bot.render.spend.report import PacingReports
from bot.render.spend.report_history import ReportHistory
from fleet.forge.runs.rounds import Rounds
from fleet.hosts.service import PROBE_EVERY
from fleet.sandbox.egress.refusals import FLUSH_INTERVAL
from scheduler.approvals_job import APPROVALS_JOB_ID, APPROVALS_JOB_REF, EXPIRE_EVERY
from scheduler.context import JobContext, Looking, Pacing, SessionsKeeper, Waiting
from scheduler.forge_jobs import (
    FORGE_POLL_JOB_REF,
    FORGE_TOKENS_JOB_ID,
    FORGE_TOKENS_JOB_REF,
    FORGE_WATCH_JOB_ID,
    FORGE_WATCH_JOB_REF,
    forge_poll_job_id,
)
from scheduler.jobs import FleetScheduler
from scheduler.looking_jobs import (
    FEED_JOB_ID,
    FEED_JOB_REF,
    HOSTS_JOB_ID,
    HOSTS_JOB_REF,
    REFUSALS_JOB_ID,
    REFUSALS_JOB_REF,
    SESSIONS_JOB_ID,
    SESSIONS_JOB_REF,
)
from scheduler.maintenance import PRUNE_EVERY, PRUNE_JOB_ID, PRUNE_JOB_REF
from scheduler.pacing_job import PACING_JOB_ID, PACING_JOB_REF
from scheduler.queue_job import SPAWN_QUEUE_JOB_ID, SPAWN_QUEUE_JOB_REF, SWEEP_EVERY
from scheduler.report_job import REPORT_GRACE, REPORT_JOB_ID, REPORT_JOB_REF
from scheduler.watchdog_job import WATCHDOG_JOB_ID, WATCHDOG_JOB_REF


def app_job_context(
    at: Grounds,
    *,
    ledgered: Ledgered,
    spend: Spend,
    fleeted: Fleeted,
    commanded: Commanded,
    forges: Rounds | None = None,
    sessions: SessionsKeeper | None = None,
) -> JobContext:
    """Every live collaborator of the app's jobs; ``sessions``: the dashboard's live hub
    (``None``: no dashboard)."""
    cfg, clock, ledger, budgets = at.cfg, at.clock, ledgered.ledger, spend.budgets
    router = commanded.commands.router
    return JobContext(
        scheduler=commanded.scheduler,
        clock=clock,
        fleet=fleeted.fleet,
        notices=ledgered.notifier,
        upkeep=ledger.chat,
        pacing=Pacing(
            budgets=budgets,
            reports=PacingReports(
                budgets,
                at.reports_dir,
                AccountCommands(spend.accounts).text,
                claim=ledger.chat.claim_event,  # each report due posted once, by one orchestrator
                cron=(cfg.pacing.report_cron, cfg.timezone),
                history=ReportHistory(
                    ledger.tasks.errors_since, budgets.typical, ledger.metering.spend_by_agent
                ),
            ),
        ),
        waiting=Waiting(
            schedules=ScheduledRuns(
                schedules=ledger.schedules,
                router=router,
                connector_named=at.serving.named,
                clock=clock,
                timezone=cfg.timezone,
            ),
            queue=commanded.commands.queue,
            approvals=ledgered.approvals,
        ),
        forges=forges,
        looking=Looking(
            feed=fleeted.feed,
            sessions=sessions,
            hosts=at.hosts if len(at.hosts) else None,
            refusals=spend.refusals,
        ),
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


def add_forge_jobs(scheduler: FleetScheduler[JobContext], rounds: Rounds) -> None:
    """Register the forges' rounds on ``scheduler``: the watch and each poll first run at
    once, the tokens' renewal one interval on (they were minted at start)."""
    now = datetime.now(UTC)  # APScheduler's clock: the system's
    if rounds.watch_seconds is not None:
        scheduler.add_interval(
            FORGE_WATCH_JOB_ID, FORGE_WATCH_JOB_REF, rounds.watch_seconds, first_run_at=now
        )
    for forge, seconds in rounds.poll_seconds.items():
        scheduler.add_interval(
            forge_poll_job_id(forge),
            FORGE_POLL_JOB_REF,
            seconds,
            {"forge": forge},
            first_run_at=now,
        )
    if rounds.renew_seconds is not None:
        scheduler.add_interval(FORGE_TOKENS_JOB_ID, FORGE_TOKENS_JOB_REF, rounds.renew_seconds)


def add_looking_jobs(
    scheduler: FleetScheduler[JobContext], looking: Looking, *, feed_poll: float
) -> None:
    """Register a look at each part ``looking`` has: the feed's logs every ``feed_poll``
    seconds, the dashboard's sessions every :data:`SESSIONS_EVERY`, the hosts every
    :data:`PROBE_EVERY` (each is probed as its link comes up too), the refused egress every
    :data:`FLUSH_INTERVAL`."""
    if looking.feed is not None:
        scheduler.add_interval(FEED_JOB_ID, FEED_JOB_REF, feed_poll)
    if looking.sessions is not None:
        scheduler.add_interval(SESSIONS_JOB_ID, SESSIONS_JOB_REF, SESSIONS_EVERY)
    if looking.hosts is not None:
        scheduler.add_interval(HOSTS_JOB_ID, HOSTS_JOB_REF, PROBE_EVERY)
    if looking.refusals is not None:
        scheduler.add_interval(REFUSALS_JOB_ID, REFUSALS_JOB_REF, FLUSH_INTERVAL)


def start_jobs(
    at: Grounds,
    ledgered: Ledgered,
    spend: Spend,
    fleeted: Fleeted,
    commanded: Commanded,
    forges: Rounds | None = None,
    sessions: SessionsKeeper | None = None,
) -> JobContext:
    """The job context, the app's jobs (the forges' rounds among them, when given, and the
    dashboard's sessions, when it serves), and the scheduler (made by the commands phase)
    running them."""
    context = app_job_context(
        at,
        ledgered=ledgered,
        spend=spend,
        fleeted=fleeted,
        commanded=commanded,
        forges=forges,
        sessions=sessions,
    )
    add_app_jobs(commanded.scheduler, at.cfg)
    if forges is not None:
        add_forge_jobs(commanded.scheduler, forges)
    add_looking_jobs(commanded.scheduler, context.looking, feed_poll=fleeted.feed.poll)
    commanded.scheduler.start(context)
    return context
