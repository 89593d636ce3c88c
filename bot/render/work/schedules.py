"""Pure renderers of operator schedules: the ``schedule list`` table, what ``schedule add``
and ``schedule remove`` answer, and the heading above a scheduled run's reply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo

from bot.render.fleet import DASH, code_span, duration, table
from fleet.ledger import ScheduleRecord

_DETAIL_LIMIT = 80


def local_time(when: datetime, tz: tzinfo) -> str:
    """``when`` as a minute in ``tz``: ``2025-03-02 02:00``."""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _relative(when: datetime, now: datetime) -> str:
    seconds = (when - now).total_seconds()
    return f"in {duration(seconds)}" if seconds >= 0 else f"{duration(-seconds)} ago"


def schedules(
    records: Sequence[ScheduleRecord],
    next_runs: Mapping[int, datetime | None],
    now: datetime,
    tz: tzinfo,
) -> str:
    """The ``schedule list`` table; ``next_runs`` holds each registered job's next run."""
    if not records:
        return (
            'No schedules. An admin adds one with `schedule add "CRON" COMMAND`, e.g. '
            '`schedule add "0 2 * * *" spawn reviewer --prompt "review the merges"`.'
        )
    rows = []
    for record in records:
        upcoming = next_runs.get(record.id)
        rows.append(
            [
                str(record.id),
                code_span(record.cron),
                code_span(record.command),
                record.created_by,
                DASH
                if upcoming is None
                else f"{local_time(upcoming, tz)} ({_relative(upcoming, now)})",
                _last_run(record, tz),
            ]
        )
    headers = ["id", "cron", "command", "created by", "next run", "last run"]
    return f"{table(headers, rows)}\n\nTimes are in {tz}."


def _last_run(record: ScheduleRecord, tz: tzinfo) -> str:
    if record.last_run_at is None:
        return "never"
    said = f"{local_time(record.last_run_at, tz)} {record.last_outcome or '?'}"
    if record.last_detail and record.last_outcome != "ok":
        detail = record.last_detail
        if len(detail) > _DETAIL_LIMIT:
            detail = detail[: _DETAIL_LIMIT - 1] + "…"
        said += f": {detail}"
    return said


def schedule_added(record: ScheduleRecord, next_run: datetime | None, tz: tzinfo) -> str:
    when = DASH if next_run is None else f"{local_time(next_run, tz)} {tz}"
    return (
        f"Schedule **{record.id}** added: {code_span(record.command)} at {code_span(record.cron)} "
        f"({tz}), as {record.created_by}, replying here. Next run: {when}."
    )


def schedule_removed(record: ScheduleRecord) -> str:
    return (
        f"Schedule **{record.id}** removed: {code_span(record.command)} at "
        f"{code_span(record.cron)} no longer runs."
    )


def schedule_heading(record: ScheduleRecord) -> str:
    """The line above a scheduled run's reply: which schedule ran what, for whom."""
    return (
        f"Schedule **{record.id}** ({code_span(record.cron)}, set up by {record.created_by}) "
        f"ran {code_span(record.command)}:"
    )
