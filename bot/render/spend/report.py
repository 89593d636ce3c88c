"""The pacing report: budgets' numbers as a markdown table and as a PNG chart.

Pure rendering of :class:`~fleet.budgets.model.BudgetStatus` values — no ledger, no
clock, no LLM: ``now`` and the time zone are passed in. :func:`render_text` is the ``pace``
command's answer and the text of the report; :func:`render_chart` draws one panel per
active window (cumulative use against the even spread, the limit, the reset, now, and the
projection at the current burn rate); :func:`write_chart` gives the chart its place among
the kept reports (the newest :data:`KEEP_REPORTS`).

The drawing itself is in :mod:`bot.render.spend.report_chart` (matplotlib on the Agg canvas),
imported only when a chart is drawn. :func:`compose` makes the whole report as a
:class:`~fleet.notices.Notice`, for the ``report`` command and, through
:class:`PacingReports`, for the scheduled job (:mod:`scheduler.report_job`); what it says
of the past beside the table is :mod:`bot.render.spend.report_history`'s.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from bot.render.fleet import table
from bot.render.spend.budgets import DASH, amount, ratio, reset, share, status_words
from bot.render.spend.report_history import ReportHistory
from fleet.budgets.model import BudgetStatus
from fleet.budgets.wording import held_beside
from fleet.ledger.records.budgets import Step
from fleet.notices import Notice
from fleet.private_files import private_dir
from scheduler.cron import cron_trigger, latest_fire

NO_BUDGETS: Final = "No budgets are configured: there is nothing to pace."
KEEP_REPORTS: Final = 20
"""How many report charts :func:`write_chart` keeps in the reports directory."""


# Month names spelled out here: strftime's %b follows the process locale.
_MONTHS: Final = (
    *("Jan", "Feb", "Mar", "Apr", "May", "Jun"),
    *("Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
)
_CHART_NAME = re.compile(r"pacing-(\d{8}-\d{6})(?:-(\d+))?\.png")

# --- Text ------------------------------------------------------------------------------------


def render_text(statuses: Sequence[BudgetStatus], now: datetime, tz: tzinfo) -> str:
    """The report as markdown: one table row per budget, then the active bursts.

    Times are shown in ``tz``: ``HH:MM`` on the day of ``now``, with the date otherwise.
    """
    if not statuses:
        return NO_BUDGETS
    headers = (
        "scope",
        "window",
        "used",
        "limit",
        "pace",
        "projected at reset",
        "runs out",
        "status",
        "step",
        "source",
    )
    rows = [_row(status, now, tz) for status in statuses]
    parts = [f"Pacing at {_when(now, now, tz, always_date=True)}:", table(headers, rows)]
    bursts = [_burst_line(status, now, tz) for status in statuses if burst_active(status, now)]
    if bursts:
        parts.append("**Bursts**\n" + "\n".join(bursts))
    parts.append(
        "Pace is use so far ÷ the even spread of the limit over the window so far (1.00× is "
        "exactly on pace); projections assume the current burn rate."
    )
    return "\n\n".join(parts)


def burst_active(status: BudgetStatus, now: datetime) -> bool:
    """Whether ``status`` carries a burst grant that has not expired at ``now``."""
    return status.burst is not None and status.burst.until > now


def _row(status: BudgetStatus, now: datetime, tz: tzinfo) -> list[str]:
    scope = f"`{status.budget.scope}`"
    window = f"{status.budget.window.label}, {reset(status, _when(status.end, now, tz))}"
    used = amount(status.used, status.unit) + share(status.used, status.limit)
    used += held_beside(status, amount)
    projected = amount(status.projected_end_use, status.unit) + share(
        status.projected_end_use, status.limit
    )
    exhaustion = status.projected_exhaustion
    runs_out = DASH if exhaustion is None else _when(exhaustion, now, tz)
    state = status_words(status)
    if burst_active(status, now):
        state += " (burst)"
    return [
        scope,
        window,
        used,
        amount(status.limit, status.unit),
        ratio(status.pace_ratio),
        projected,
        runs_out,
        state,
        _step(status, now, tz),
        str(status.source),
    ]


def _step(status: BudgetStatus, now: datetime, tz: tzinfo) -> str:
    if status.step is Step.NONE:
        return DASH
    if status.step is Step.DOWNGRADE:
        rungs = "rung" if status.level == 1 else "rungs"
        return f"downgrade ({status.level} {rungs})"
    if status.step is Step.QUEUE and status.queued_until is not None:
        return f"queued until {_when(status.queued_until, now, tz)}"
    if status.step is Step.REFUSE:
        return f"refuse until {_when(status.end, now, tz)}"
    return str(status.step)


def _burst_line(status: BudgetStatus, now: datetime, tz: tzinfo) -> str:
    burst = status.burst
    if burst is None:  # burst_active() said otherwise; keeps the type checker informed
        return ""
    why = f" — {burst.reason}" if burst.reason else ""
    return (
        f"- `{burst.scope}` may spend past its pace until {_when(burst.until, now, tz)}, "
        f"granted by {burst.granted_by}{why}"
    )


def _when(moment: datetime, now: datetime, tz: tzinfo, *, always_date: bool = False) -> str:
    """``HH:MM`` in ``tz`` on the day of ``now``, else ``Nov 23 09:00``; the zone's name
    is added with ``always_date``."""
    local, today = moment.astimezone(tz), now.astimezone(tz)
    clock = f"{local:%H:%M}"
    if always_date:
        return f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".rstrip()
    if local.date() == today.date():
        return clock
    return f"{_MONTHS[local.month - 1]} {local.day} {clock}"


# --- Chart -----------------------------------------------------------------------------------


def active_windows(statuses: Sequence[BudgetStatus]) -> list[BudgetStatus]:
    """The statuses whose window contains their ``now``: the ones :func:`render_chart` draws."""
    return [status for status in statuses if status.start <= status.now < status.end]


def render_chart(statuses: Sequence[BudgetStatus], path: Path, tz: tzinfo) -> Path:
    """Draw one panel per active window into a PNG at ``path`` and return ``path``.

    Each panel is ``PANEL_WIDTH_PX`` × ``PANEL_HEIGHT_PX`` at ``DPI``
    (:mod:`bot.render.spend.report_chart`). Raises ``ValueError`` when no status has an active
    window (there is nothing to draw).
    """
    panels = active_windows(statuses)
    if not panels:
        raise ValueError("no budget has an active window: there is no chart to draw")
    # matplotlib takes ~0.4 s to import: only processes that draw a chart pay for it.
    from bot.render.spend.report_chart import draw

    return draw(panels, path, tz)


# --- Keeping charts --------------------------------------------------------------------------


def chart_path(directory: Path, now: datetime) -> Path:
    """A new file name ``pacing-YYYYmmdd-HHMMSS.png`` (UTC, so names sort by time) in
    ``directory``, with ``-2``, ``-3`` … when that second is taken."""
    stem = f"pacing-{now.astimezone(UTC):%Y%m%d-%H%M%S}"
    candidate = directory / f"{stem}.png"
    serial = 1
    while candidate.exists():
        serial += 1
        candidate = directory / f"{stem}-{serial}.png"
    return candidate


def write_chart(
    statuses: Sequence[BudgetStatus],
    directory: Path,
    now: datetime,
    tz: tzinfo,
    *,
    keep: int = KEEP_REPORTS,
) -> Path:
    """Render the chart into ``directory`` (created if missing) and delete all but the
    newest ``keep`` report charts there. The file appears whole: it is written under a
    temporary name and renamed."""
    private_dir(directory)
    final = chart_path(directory, now)
    partial = final.with_name(f".{final.name}.partial")
    try:
        render_chart(statuses, partial, tz)
        partial.chmod(0o600)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    prune_charts(directory, keep)
    return final


def prune_charts(directory: Path, keep: int = KEEP_REPORTS) -> list[Path]:
    """Delete all but the newest ``keep`` report charts in ``directory``; returns the
    deleted paths. Other files are never touched."""
    charts = sorted(
        (p for p in directory.iterdir() if _CHART_NAME.fullmatch(p.name)), key=_chart_order
    )
    doomed = charts[: max(0, len(charts) - keep)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def _chart_order(path: Path) -> tuple[str, int]:
    """Oldest first: by the time in the name, then by the serial (none counts as 1)."""
    match = _CHART_NAME.fullmatch(path.name)
    if match is None:
        return path.name, 0
    return match[1], int(match[2] or 1)


# --- The whole report --------------------------------------------------------------------------


class StatusSource(Protocol):
    """The read side of a :class:`~fleet.budgets.model.BudgetBook`: all a report needs."""

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


async def compose(
    book: StatusSource,
    reports_dir: Path | None,
    accounts: str | None = None,
    history: ReportHistory | None = None,
) -> Notice:
    """The report at ``book.now()``, for the home rooms: the text always (with what
    ``history`` says of the past — the week's projections, the typical day — and the
    accounts' windows, ``accounts``, when there are accounts); the chart too when
    ``reports_dir`` is given and some budget has an active window. The chart is drawn in a
    worker thread."""
    statuses = await book.statuses()
    now, tz = book.now(), book.timezone
    text = render_text(statuses, now, tz)
    past = await history.text(now) if history is not None and statuses else ""
    if history is not None and not statuses:
        # Nothing to pace, but what was spent is still worth a look (the offline provider
        # included): today's spend, and the typical day once there is one.
        past = "\n\n".join(
            part for part in (await history.today(now), await history.text(now)) if part
        )
    if past:
        text += "\n\n" + past
    if accounts:
        text += "\n\n**Accounts**\n\n" + accounts
    if reports_dir is None or not active_windows(statuses):
        return Notice(text)
    chart = await asyncio.to_thread(write_chart, statuses, reports_dir, now, tz)
    return Notice(text, images=(chart,))


REPORT_CLAIMS = "scheduler"
"""Under which name the reports' claims are kept with the chat events' (pruned alike)."""


class PacingReports:
    """The scheduled report's maker: :func:`compose` over one book and reports directory.

    With ``claim`` (the ledger's event claim) and the report's ``cron``, each report due is
    posted once whatever the number of orchestrators on the ledger and their restarts:
    :meth:`claim` takes the report due at the cron's latest time (``report:<time>``) for
    this orchestrator only if none took it before."""

    def __init__(
        self,
        book: StatusSource,
        reports_dir: Path,
        accounts: Callable[[], str | None] | None = None,
        *,
        claim: Callable[[str, str], Awaitable[bool]] | None = None,
        cron: tuple[str, tzinfo] | None = None,
        history: ReportHistory | None = None,
    ) -> None:
        self._book = book
        self._history = history
        self._reports_dir = reports_dir
        self._accounts = accounts or (lambda: None)
        self._claim = claim
        self._trigger = cron_trigger(*cron) if cron is not None else None

    async def pacing_report(self) -> Notice:
        return await compose(self._book, self._reports_dir, self._accounts(), self._history)

    def due(self, now: datetime, grace: timedelta) -> datetime | None:
        """The report due at ``now``: the cron's latest time within ``grace`` before it."""
        if self._trigger is None:
            return None
        return latest_fire(self._trigger, now - grace, now)

    async def claim(self, now: datetime, grace: timedelta) -> bool:
        """Whether this orchestrator posts the report due at ``now`` (one off the schedule,
        or without a ledger to claim in, always)."""
        due = self.due(now, grace)
        if due is None or self._claim is None:
            return True
        return await self._claim(REPORT_CLAIMS, f"report:{due.isoformat()}")
