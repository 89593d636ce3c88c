"""A connector's link to its service, as the app reads it: connected, logged in, the time
of the last event, the last error and since when it is up or down.

Each connector owns one :class:`LinkHealth` and updates it where it learns something —
the Matrix sync loop at each sync that works or fails, Discord's gateway at each
connect, ready, resume and disconnect, the console at its start and end. The app reads
:meth:`LinkHealth.report` (``status``, the dashboard, ``/metrics``) and is woken at each
up/down change (:meth:`LinkHealth.subscribe`).

:class:`DownTeller` is the pure decision of what to tell the other connectors' rooms: a
connector is told down once it stayed down :attr:`DownTeller.after` seconds (sync failing
a few times in a row within that, then working again, tells nobody), and back once when
it stayed up as long again after being told down — never once per retry, and a connector
that flaps (a sync working now and then through an outage) is told down once and back once.
Only the notices wait: :meth:`LinkHealth.report` always says the live state. A connector
that never came up since the app started, or that the app stopped, is never told about.

The last error is kept on one line, bounded (:data:`ERROR_CHARS`) and with nothing hidden
in it (:func:`fleet.redaction.invisible.visible`); every surface showing it redacts and
guards it as it does any text another wrote (the dashboard's pages, chat, ``status``): it
may quote what a server answered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from fleet.redaction.invisible import visible
from fleet.timing.clock import Clock

ERROR_CHARS: Final = 300
"""Characters of a last error kept, at most."""
_LONGEST: Final = 64 * 1024  # an error longer than this is cut before it is read
DOWN_AFTER_SECONDS: Final = 60.0
"""How long a connector stays down before the others are told, unless the config says."""


@dataclass(frozen=True, slots=True)
class HealthReport:
    """One connector's link at one moment. ``since``: when it last went up or down (its
    start, before the first change); ``closed``: the app stopped it (not an outage)."""

    connector: str
    connected: bool
    logged_in: bool
    since: datetime
    last_event_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    closed: bool = False
    ever_up: bool = False

    @property
    def up(self) -> bool:
        """Connected and logged in: it can hear and speak."""
        return self.connected and self.logged_in


class LinkHealth:
    """The mutable state one connector keeps of its link, and who is woken at a change."""

    def __init__(self, connector: str, clock: Clock) -> None:
        self._clock = clock
        self._report = HealthReport(connector, connected=False, logged_in=False, since=clock.now())
        self._listeners: list[Callable[[HealthReport], None]] = []

    def report(self) -> HealthReport:
        return self._report

    def subscribe(self, listener: Callable[[HealthReport], None]) -> None:
        """Call ``listener`` with the new report at each up/down change."""
        self._listeners.append(listener)

    def connected(self, *, logged_in: bool = True) -> None:
        """The service answers (and knows us, unless ``logged_in`` is false)."""
        self._set(connected=True, logged_in=logged_in)

    def lost(self, error: BaseException | str | None, *, logged_out: bool = False) -> None:
        """The service did not answer (``logged_out``: it refused who we are): down, with
        ``error`` as the last error."""
        if error is not None:
            self.failed(error)
        self._set(connected=False, logged_in=self._report.logged_in and not logged_out)

    def failed(self, error: BaseException | str) -> None:
        """An error worth showing that changes nothing of up or down."""
        text = error if isinstance(error, str) else _error_text(error)
        self._report = replace(self._report, last_error=_bounded(text), last_error_at=self._now())

    def event(self) -> None:
        """An event came from the service."""
        self._report = replace(self._report, last_event_at=self._now())

    def closed(self) -> None:
        """The app stopped the connector: down, and no outage to tell anyone of."""
        self._report = replace(self._report, closed=True)
        self._set(connected=False, logged_in=False)

    def _set(self, *, connected: bool, logged_in: bool) -> None:
        before = self._report
        after = replace(before, connected=connected, logged_in=logged_in)
        if after.up != before.up:
            after = replace(after, since=self._now(), ever_up=before.ever_up or after.up)
        self._report = after
        if after.up != before.up:
            for listener in list(self._listeners):
                listener(after)

    def _now(self) -> datetime:
        return self._clock.now()


def _bounded(text: str) -> str:
    """``text`` on one line, nothing in it hidden, cut to :data:`ERROR_CHARS` at a ``…``
    (where the redactor still finds a secret cut short: :mod:`fleet.redaction.known`)."""
    line = " ".join(visible(text[:_LONGEST]).split())
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"


def _error_text(error: BaseException) -> str:
    said = str(error).strip()
    return f"{type(error).__name__}: {said}" if said else type(error).__name__


@dataclass(frozen=True, slots=True)
class Tell:
    """What to tell the other connectors' rooms: ``report``'s connector is down (or back)."""

    down: bool
    report: HealthReport


class DownTeller:
    """Which connectors' rooms are told what, from the reports and the time (pure)."""

    def __init__(self, after: float = DOWN_AFTER_SECONDS) -> None:
        self.after = timedelta(seconds=after)
        self._told_down: set[str] = set()

    def step(self, reports: Mapping[str, HealthReport], now: datetime) -> list[Tell]:
        """What to tell now; each connector is told down once (after it stayed down
        :attr:`after`) and back once after (when it stayed up as long)."""
        tells: list[Tell] = []
        for name, report in reports.items():
            if report.closed or not report.ever_up:
                continue
            if name in self._told_down:
                if report.up and now - report.since >= self.after:
                    self._told_down.discard(name)
                    tells.append(Tell(down=False, report=report))
            elif not report.up and now - report.since >= self.after:
                self._told_down.add(name)
                tells.append(Tell(down=True, report=report))
        return tells

    def next_check(self, reports: Mapping[str, HealthReport], now: datetime) -> float | None:
        """Seconds until a connector down now would be confirmed down, or one told down
        and up now would be confirmed back (``None``: none is waiting to be)."""
        waits = [
            (r.since + self.after - now).total_seconds()
            for name, r in reports.items()
            if not r.closed and r.ever_up and r.up == (name in self._told_down)
        ]
        return max(0.0, min(waits)) if waits else None
