"""Where a budget's current window begins and ends. Pure: ``now``, the timezone and the
anchor are passed in; the bounds come back as aware UTC datetimes, ``start <= now < end``
(except for a fixed window whose reset has passed: see below).

* **rolling** windows of ``length`` repeat back to back from an ``anchor`` (when the
  budget began counting). Without an anchor they are anchored at the UTC epoch, so the
  boundaries stay put across restarts.
* **daily**, **weekly** (from Monday) and **monthly** windows run from midnight to
  midnight *local time* in ``tz``. Midnight is placed by the zone's own rules, so a day
  on which the clocks change lasts 23 or 25 hours.
* **fixed** windows end at ``reset_at`` and began ``length`` before it. They do not
  repeat: once ``reset_at`` has passed, ``now`` is past the end until someone (the
  provider's quota signals, an operator) gives a new reset.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from fleet.ledger.records.budgets import WindowKind, WindowSpec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_bounds(
    spec: WindowSpec, now: datetime, tz: ZoneInfo, *, anchor: datetime | None = None
) -> tuple[datetime, datetime]:
    """The ``(start, end)`` of the window of ``spec`` that holds ``now``, in UTC.

    ``tz`` places calendar windows' midnights; ``anchor`` is where rolling windows start
    repeating (default: the UTC epoch). Raises ``ValueError`` for a naive ``now`` or
    ``anchor``, or a spec missing what its kind needs (a positive ``length`` for rolling
    and fixed windows, ``reset_at`` for fixed ones).
    """
    if now.tzinfo is None:
        raise ValueError("window_bounds needs a timezone-aware now")
    if spec.kind is WindowKind.ROLLING:
        return _rolling(_length(spec), now, EPOCH if anchor is None else anchor)
    if spec.kind is WindowKind.FIXED:
        if spec.reset_at is None:
            raise ValueError("a fixed window needs reset_at (when it ends)")
        if spec.reset_at.tzinfo is None:
            raise ValueError("a fixed window's reset_at must be timezone-aware")
        end = spec.reset_at.astimezone(UTC)
        return end - _length(spec), end
    today = now.astimezone(tz).date()
    if spec.kind is WindowKind.DAILY:
        first, after = today, today + timedelta(days=1)
    elif spec.kind is WindowKind.WEEKLY:
        first = today - timedelta(days=today.weekday())
        after = first + timedelta(days=7)
    else:
        first = today.replace(day=1)
        after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return _midnight(first, tz), _midnight(after, tz)


def _rolling(length: timedelta, now: datetime, anchor: datetime) -> tuple[datetime, datetime]:
    if anchor.tzinfo is None:
        raise ValueError("a rolling window's anchor must be timezone-aware")
    # Floor division of timedeltas is exact (whole microseconds) and floors towards the
    # past, so a ``now`` before the anchor still falls in a window of the same grid.
    start = anchor.astimezone(UTC) + length * ((now - anchor) // length)
    return start, start + length


def _length(spec: WindowSpec) -> timedelta:
    if spec.length is None:
        raise ValueError(f"a {spec.kind.value} window needs a length")
    if spec.length <= timedelta(0):
        raise ValueError(f"a {spec.kind.value} window's length must be positive")
    return spec.length


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz``, in UTC.

    Built as a local wall time and converted, so the offset is midnight's own; where a
    zone skips midnight (clocks jump at 00:00) zoneinfo's ``fold=0`` lands on the instant
    of the jump, which is when that day begins.
    """
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
