"""Report windows (``5h``, ``today``, ``7d``, ``30d``) and when each began. Pure: ``now`` and
the timezone are passed in.

``today`` starts at midnight in the report's timezone; ``None`` means the host's zone.
:meth:`fleet.supervisor.fleet.Fleet.window_start` is the one caller that picks the zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

WINDOWS: tuple[str, ...] = ("5h", "today", "7d", "30d")
DEFAULT_WINDOW = "today"

_SPANS = {"5h": timedelta(hours=5), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def day_start(now: datetime, tz: tzinfo | None = None) -> datetime:
    """Midnight at the start of ``now``'s day in ``tz`` (``None``: the host's timezone)."""
    local = now.astimezone(tz)
    if tz is None:
        # astimezone() gives a fixed offset: now's. Midnight's offset differs on the day a
        # daylight-saving change happens, so let the host's rules place midnight itself.
        return datetime(local.year, local.month, local.day).astimezone()
    return datetime(local.year, local.month, local.day, tzinfo=tz)


def window_start(window: str, now: datetime, tz: tzinfo | None = None) -> datetime:
    """When ``window`` began, as of ``now``, in ``tz`` (``None``: the host's timezone)."""
    if window == "today":
        return day_start(now, tz)
    span = _SPANS.get(window)
    if span is None:
        raise ValueError(f"unknown window {window!r}; known: {', '.join(WINDOWS)}")
    return now.astimezone(tz) - span
