"""Tests for the pacing report: composing it (bot.render.spend.report), the job
(scheduler.report_job), and its posting to every home room through the real notifier."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.chat.notifier import Notifier
from bot.render.spend.report import PacingReports, compose, render_text
from connectors.base import Connector, OutboundMessage, RoomId
from fleet.ledger import Ledger
from fleet.notices import Notice
from fleet.timing.clock import ManualClock
from scheduler.context import JobContext
from scheduler.errors import ReportNotPosted
from scheduler.jobs import FleetScheduler
from scheduler.report_job import REPORT_JOB_ID, REPORT_JOB_REF, report_job
from tests.fakes.doubles.budget_book import StaticBook, budget, paced
from tests.fakes.doubles.job_context import job_context
from tests.unit.bot.render.test_report import BERLIN, NOW, PNG_SIGNATURE, coder
from tests.unit.chat_fakes import HomeConnector

DEADLINE = 10.0


@pytest.fixture
def book() -> StaticBook:
    return StaticBook([coder()], BERLIN, NOW)


class NoThreads:
    """A ledger with no threads bound: reports go to home rooms only anyway."""

    async def threads_for_topic(self, connector: str, topic: str) -> list[tuple[str, str]]:
        return []


def context(
    book: StaticBook,
    reports: Path,
    connectors: list[Connector],
    maker: PacingReports | None = None,
    clock: ManualClock | None = None,
) -> JobContext:
    """The job's context: the book's report, posted by a notifier over ``connectors``."""
    return job_context(
        reports=maker or PacingReports(book, reports),
        notices=Notifier(NoThreads(), lambda: connectors),
        clock=clock or ManualClock(NOW),
    )


async def test_compose_gives_the_text_and_a_chart_in_the_reports_dir(
    book: StaticBook, tmp_path: Path
) -> None:
    """The report's text is the pace table at the book's time; the chart goes in reports_dir."""
    report = await compose(book, tmp_path / "reports")
    assert report.markdown == render_text([coder()], NOW, BERLIN)
    (chart,) = report.images
    assert chart.parent == tmp_path / "reports"
    assert chart.read_bytes().startswith(PNG_SIGNATURE)


async def test_compose_without_a_reports_dir_or_active_windows_is_text_only(
    book: StaticBook, tmp_path: Path
) -> None:
    """No directory, no budgets, or no active window: the report is the text alone."""
    assert (await compose(book, None)).images == ()
    assert await compose(StaticBook([], BERLIN, NOW), tmp_path) == Notice(
        render_text([], NOW, BERLIN)
    )
    over = paced(budget("global", timedelta(hours=1), 10), NOW - timedelta(hours=2), NOW, 5)
    assert (await compose(StaticBook([over], BERLIN, NOW), tmp_path)).images == ()
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_the_job_posts_text_and_chart_to_every_home_room(
    book: StaticBook, tmp_path: Path
) -> None:
    """Each connector with a home room gets the text with the chart; others are skipped."""
    matrix = HomeConnector("matrix", "!ops:example.org")
    console = HomeConnector("console", "console")
    silent = HomeConnector("discord", None)

    report = await report_job(context(book, tmp_path / "reports", [matrix, console, silent]))

    assert report is not None
    (chart,) = report.images
    for connector, room in ((matrix, "!ops:example.org"), (console, "console")):
        assert connector.sent == [
            OutboundMessage(room=RoomId(room), markdown=report.markdown, images=(chart,))
        ]
    assert silent.sent == []


async def test_one_connector_failing_does_not_stop_the_others(
    book: StaticBook, tmp_path: Path
) -> None:
    """A connector that cannot post is named in ReportNotPosted after the others posted."""
    broken = HomeConnector("matrix", "!ops:example.org", broken=True)
    console = HomeConnector("console", "console")
    with pytest.raises(ReportNotPosted, match="matrix: matrix is down"):
        await report_job(context(book, tmp_path, [broken, console]))
    assert len(console.sent) == 1


async def test_the_job_runs_under_the_scheduler_by_reference(
    book: StaticBook, tmp_path: Path
) -> None:
    """REPORT_JOB_REF resolves and takes no arguments but the context; run_now returns the
    report it posted."""
    console = HomeConnector("console", "console")
    scheduler: FleetScheduler[JobContext] = FleetScheduler()
    scheduler.add_interval(REPORT_JOB_ID, REPORT_JOB_REF, 86_400)
    scheduler.start(context(book, tmp_path, [console]))
    try:
        report = await asyncio.wait_for(scheduler.run_now(REPORT_JOB_ID), DEADLINE)
    finally:
        await scheduler.shutdown()
    assert isinstance(report, Notice)
    assert console.sent[0].images == report.images
    assert book.asked == 1


async def test_a_report_due_is_posted_once_whatever_the_orchestrators(
    book: StaticBook, tmp_path: Path
) -> None:
    """Two orchestrators on one ledger (an active one and the standby that took over, or one
    restarted) both run the job for the report due at 09:00: one posts it, the other
    nothing; the next day's is posted again."""
    at = datetime(2025, 3, 3, 9, 0, 20, tzinfo=UTC)
    clock = ManualClock(at)
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    try:
        console = HomeConnector("console", "console")

        def maker() -> PacingReports:
            return PacingReports(
                book, None, claim=ledger.chat.claim_event, cron=("0 9 * * *", ZoneInfo("UTC"))
            )

        first = await report_job(context(book, tmp_path, [console], maker(), clock))
        clock.advance(40)  # the standby, a little later
        second = await report_job(context(book, tmp_path, [console], maker(), clock))
        assert first is not None and second is None
        assert len(console.sent) == 1
        clock.advance(86_400)
        assert await report_job(context(book, tmp_path, [console], maker(), clock)) is not None
        assert len(console.sent) == 2
    finally:
        await ledger.close()
