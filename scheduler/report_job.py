"""The pacing report as a job: compose it (text and chart) and post it to the home rooms.

:func:`compose` is shared by the ``report`` command and the scheduled job. The job,
:func:`report_job`, is referenced by :data:`REPORT_JOB_REF`; like every job it gets plain
data — the *name* of a :class:`ReportDesk` registered with
:func:`scheduler.jobs.register_context` — and looks the live object up when it runs.
:class:`HomeRooms` is the desk the app registers: statuses from the budget book (any
:class:`StatusSource`), posts to every connector's home room.

Errors::

    SchedulerError
    └── ReportNotPosted     a connector could not take the report (the others still got it)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from connectors.base import Connector, OutboundMessage
from connectors.errors import ConnectorError
from scheduler import jobs
from scheduler.budget_model import BudgetStatus
from scheduler.jobs import SchedulerError
from scheduler.report import active_windows, render_text, write_chart

log = logging.getLogger(__name__)

REPORT_JOB_ID: Final = "pacing-report"
REPORT_JOB_REF: Final = "scheduler.report_job:report_job"
REPORT_CONTEXT: Final = "report"
"""The name the app registers its :class:`ReportDesk` under."""


class ReportNotPosted(SchedulerError):
    """At least one connector could not take the report; the others still got it."""


@dataclass(frozen=True, slots=True)
class Report:
    """A composed report: the markdown table and the chart files (none without budgets)."""

    markdown: str
    images: tuple[Path, ...] = ()


class StatusSource(Protocol):
    """The read side of a :class:`~scheduler.budget_model.BudgetBook`: all a report needs."""

    @property
    def timezone(self) -> ZoneInfo:
        """The configured time zone: times in the report are shown in it."""
        ...

    def now(self) -> datetime:
        """The current time from the injected clock."""
        ...

    async def statuses(self) -> list[BudgetStatus]:
        """Every budget's status at :meth:`now`."""
        ...


@runtime_checkable
class ReportDesk(StatusSource, Protocol):
    """What the scheduled report needs: the budgets, where charts are kept, where to post."""

    @property
    def reports_dir(self) -> Path:
        """Where chart files go (``<state_dir>/reports``); the newest 20 are kept."""
        ...

    async def post(self, markdown: str, images: Sequence[Path]) -> None:
        """Post the report's text, then its images, wherever reports go."""
        ...


async def compose(book: StatusSource, reports_dir: Path | None) -> Report:
    """The report at ``book.now()``: the text always; the chart too when ``reports_dir`` is
    given and some budget has an active window. The chart is drawn in a worker thread."""
    statuses = await book.statuses()
    now, tz = book.now(), book.timezone
    text = render_text(statuses, now, tz)
    if reports_dir is None or not active_windows(statuses):
        return Report(text)
    chart = await asyncio.to_thread(write_chart, statuses, reports_dir, now, tz)
    return Report(text, (chart,))


async def report_job(*, context: str = REPORT_CONTEXT) -> Report:
    """Compose the report from the desk registered as ``context`` and post it."""
    desk = jobs.context(context)
    if not isinstance(desk, ReportDesk):
        raise SchedulerError(f"context {context!r} is a {type(desk).__name__}, not a report desk")
    report = await compose(desk, desk.reports_dir)
    await desk.post(report.markdown, report.images)
    log.info("pacing report posted with %d chart(s)", len(report.images))
    return report


class HomeRooms:
    """A :class:`ReportDesk` that posts to the home room of every connector.

    ``connectors`` is a sequence or a callable returning one, so the app can register the
    desk before its connectors are all started. Connectors without a home room are skipped.
    """

    def __init__(
        self,
        book: StatusSource,
        connectors: Sequence[Connector] | Callable[[], Sequence[Connector]],
        reports_dir: Path,
    ) -> None:
        self._book = book
        self._connectors = connectors
        self._reports_dir = reports_dir

    @property
    def timezone(self) -> ZoneInfo:
        return self._book.timezone

    @property
    def reports_dir(self) -> Path:
        return self._reports_dir

    def now(self) -> datetime:
        return self._book.now()

    async def statuses(self) -> list[BudgetStatus]:
        return await self._book.statuses()

    async def post(self, markdown: str, images: Sequence[Path]) -> None:
        """Send to each home room in turn; one connector failing does not stop the others,
        and :class:`ReportNotPosted` names every one that failed afterwards."""
        connectors = self._connectors() if callable(self._connectors) else self._connectors
        failed: list[str] = []
        for connector in connectors:
            room = connector.home_room
            if room is None:
                continue
            message = OutboundMessage(room=room, markdown=markdown, images=tuple(images))
            try:
                await connector.send(message)
            except ConnectorError as exc:
                log.warning("pacing report not posted on %s: %s", connector.name, exc)
                failed.append(f"{connector.name}: {exc}")
        if failed:
            raise ReportNotPosted("the pacing report was not posted on " + "; ".join(failed))
