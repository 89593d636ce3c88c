"""Tests for scheduler.report_job: composing the report, the job, and posting to home rooms."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.base import OutboundMessage, RoomId, SendResult
from connectors.errors import ConnectorError
from scheduler.jobs import FleetScheduler, SchedulerError, register_context, unregister_context
from scheduler.report import render_text
from scheduler.report_job import (
    REPORT_CONTEXT,
    REPORT_JOB_ID,
    REPORT_JOB_REF,
    HomeRooms,
    Report,
    ReportDesk,
    ReportNotPosted,
    compose,
    report_job,
)
from tests.fakes.budget_book import StaticBook, budget, paced
from tests.unit.chat_fakes import FakeConnector
from tests.unit.test_report import BERLIN, NOW, PNG_SIGNATURE, coder

DEADLINE = 10.0


class HomeConnector(FakeConnector):
    """A fake connector with a home room, optionally failing every send."""

    def __init__(self, name: str, home: str | None, *, broken: bool = False) -> None:
        super().__init__(name)
        self._home = None if home is None else RoomId(home)
        self._broken = broken

    @property
    def home_room(self) -> RoomId | None:
        return self._home

    async def send(self, message: OutboundMessage) -> SendResult:
        if self._broken:
            raise ConnectorError(f"{self.name} is down")
        return await super().send(message)


@pytest.fixture
def book() -> StaticBook:
    return StaticBook([coder()], BERLIN, NOW)


@pytest.fixture
def desk_name() -> Iterator[str]:
    """A context name registered for the test and forgotten after it."""
    name = "report-under-test"
    yield name
    unregister_context(name)


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
    assert await compose(StaticBook([], BERLIN, NOW), tmp_path) == Report(
        render_text([], NOW, BERLIN)
    )
    over = paced(budget("global", timedelta(hours=1), 10), NOW - timedelta(hours=2), NOW, 5)
    assert (await compose(StaticBook([over], BERLIN, NOW), tmp_path)).images == ()
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_the_job_posts_text_and_chart_to_every_home_room(
    book: StaticBook, tmp_path: Path, desk_name: str
) -> None:
    """Each connector with a home room gets the text with the chart; others are skipped."""
    matrix = HomeConnector("matrix", "!ops:example.org")
    console = HomeConnector("console", "console")
    silent = HomeConnector("discord", None)
    desk = HomeRooms(book, [matrix, console, silent], tmp_path / "reports")
    assert isinstance(desk, ReportDesk)
    register_context(desk_name, desk)

    report = await report_job(context=desk_name)

    (chart,) = report.images
    for connector, room in ((matrix, "!ops:example.org"), (console, "console")):
        assert connector.sent == [
            OutboundMessage(room=RoomId(room), markdown=report.markdown, images=(chart,))
        ]
    assert silent.sent == []


async def test_one_connector_failing_does_not_stop_the_others(
    book: StaticBook, tmp_path: Path, desk_name: str
) -> None:
    """A connector that cannot post is named in ReportNotPosted after the others posted."""
    broken = HomeConnector("matrix", "!ops:example.org", broken=True)
    console = HomeConnector("console", "console")
    register_context(desk_name, HomeRooms(book, lambda: [broken, console], tmp_path))
    with pytest.raises(ReportNotPosted, match="matrix: matrix is down"):
        await report_job(context=desk_name)
    assert len(console.sent) == 1


async def test_the_job_needs_a_report_desk(desk_name: str) -> None:
    """A context that is not a report desk is an error naming what it is."""
    register_context(desk_name, object())
    with pytest.raises(SchedulerError, match="is a object, not a report desk"):
        await report_job(context=desk_name)


async def test_the_job_runs_under_the_scheduler_by_reference(
    book: StaticBook, tmp_path: Path, desk_name: str
) -> None:
    """REPORT_JOB_REF resolves and takes the context name as plain data; run_now returns
    the report it posted."""
    console = HomeConnector("console", "console")
    register_context(desk_name, HomeRooms(book, [console], tmp_path))
    scheduler = FleetScheduler()
    scheduler.add_interval(REPORT_JOB_ID, REPORT_JOB_REF, 86_400, {"context": desk_name})
    scheduler.start()
    try:
        report = await asyncio.wait_for(scheduler.run_now(REPORT_JOB_ID), DEADLINE)
    finally:
        await scheduler.shutdown()
    assert isinstance(report, Report)
    assert console.sent[0].images == report.images
    assert book.asked == 1


def test_the_default_context_name() -> None:
    """The app registers its desk as 'report'; the job looks there by default."""
    assert REPORT_CONTEXT == "report"
