"""Five-field crontab expressions read the way crontab(5) reads them, as APScheduler triggers,
and the questions schedules ask of them: when next, and which run is due now.

Pure: every function takes ``now``; nothing here reads a clock.

Two places where APScheduler 3's ``CronTrigger.from_crontab`` disagrees with crontab are
settled here rather than left to surprise an operator:

- **Weekday numbers.** crontab counts from Sunday (``0`` and ``7`` are Sunday, ``1`` Monday);
  APScheduler 3 counts from Monday (``0`` is Monday). Numeric weekdays, ranges and steps are
  rewritten as weekday names, which both agree on (``1-5`` → ``mon,tue,wed,thu,fri``).
- **Day of month *and* day of week.** When both are restricted, crontab runs on days that
  match *either*; APScheduler only on days that match *both*. Such an expression is refused
  with a hint to write two schedules, rather than run on the wrong days.

A cron trigger has no seconds field here, so its runs are at least a minute apart.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from scheduler.errors import CronError

__all__ = [
    "CronError",
    "cron_trigger",
    "crontab_weekdays",
    "latest_fire",
    "missed_run",
    "next_fire",
]

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering, 0 = Sunday
_NUMERIC_PART = re.compile(r"(?P<range>\*|\d+(?:-\d+)?)(?:/(?P<step>\d+))?")
_TICK = timedelta(microseconds=1)
_FIELDS = "minute hour day-of-month month day-of-week"


def cron_trigger(expr: str, timezone: tzinfo) -> Any:
    """``expr`` (five fields: minute hour day-of-month month day-of-week) as an APScheduler
    ``CronTrigger`` whose times are read in ``timezone``. Raises :class:`CronError`."""
    fields = expr.split()
    if len(fields) != 5:
        raise CronError(f"a cron expression has 5 fields ({_FIELDS}), this one has {len(fields)}")
    minute, hour, day, month, weekday = fields
    if not day.startswith("*") and not weekday.startswith("*"):
        raise CronError(
            "day-of-month and day-of-week are both set; crontab would run on days matching "
            "either, which cannot be expressed here — make two schedules, one for each"
        )
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=crontab_weekdays(weekday),
            timezone=timezone,
        )
    except ValueError as exc:
        raise CronError(str(exc)) from None


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field with every number rewritten as a day name (``0``/``7`` →
    ``sun``), so that APScheduler 3 reads it as crontab does. Names pass through."""
    if field == "*":
        return field
    out: list[str] = []
    for part in field.split(","):
        match = _NUMERIC_PART.fullmatch(part)
        if match is None:
            out.append(part)  # a name, a name range, or something APScheduler will reject
            continue
        out.extend(_DAY_NAMES[day % 7] for day in _weekday_numbers(match["range"], match["step"]))
    return ",".join(dict.fromkeys(out))  # keep the order, drop repeats (0 and 7)


def _weekday_numbers(span: str, step: str | None) -> range:
    if span == "*":
        first, last = 0, 6
    elif "-" in span:
        low, high = span.split("-")
        first, last = int(low), int(high)
    else:
        first = int(span)
        last = 7 if step is not None else first  # "1/2": from Monday on, every other day
    every = int(step) if step is not None else 1
    if not 0 <= first <= 7 or not 0 <= last <= 7:
        raise CronError(f"day-of-week {span!r}: days are 0-7 (0 and 7 are Sunday) or sun-sat")
    if first > last:
        raise CronError(f"day-of-week range {span!r} runs backwards")
    if every < 1:
        raise CronError(f"day-of-week step must be at least 1, got {step}")
    return range(first, last + 1, every)


def next_fire(trigger: Any, now: datetime) -> datetime | None:
    """The first time ``trigger`` fires at or after ``now``; ``None`` if it never will."""
    found: datetime | None = trigger.get_next_fire_time(None, now)
    return found


def latest_fire(trigger: Any, after: datetime, now: datetime) -> datetime | None:
    """The last time ``trigger`` fired in ``(after, now]``, or ``None``.

    Walks forward from ``after``: keep the window short (minutes), since a cron trigger can
    fire every minute.
    """
    latest: datetime | None = None
    candidate = next_fire(trigger, after + _TICK)
    while candidate is not None and candidate <= now:
        latest = candidate
        candidate = next_fire(trigger, candidate + _TICK)
    return latest


def missed_run(
    trigger: Any, *, created_at: datetime, now: datetime, grace: timedelta
) -> datetime | None:
    """The run to make up on start: the latest time ``trigger`` fired within ``grace`` before
    ``now`` (and after the schedule was created), or ``None``. Older runs are not made up,
    and several missed runs become this one."""
    return latest_fire(trigger, max(created_at, now - grace), now)
