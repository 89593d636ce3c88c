"""Events a connector received that could not be taken or handled.

Every such failure is logged with the connector and the event's id, and counted (the app
counts them in ``/metrics``). Receiving goes on with the next event; but a receive path
that fails :data:`KEEPS_FAILING` times in a row, with nothing handled in between, is a
problem: ``ps`` and the dashboard show it until an event is handled again.

One :class:`ReceiveFailures` serves the whole app: the connectors' own receive loops (an
event their translation choked on) and the app's handling of what they handed over both
report into it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

KEEPS_FAILING = 3
"""Failures in a row, nothing handled in between, that make a receive path a problem."""
_ERROR_CHARS = 160


@dataclass(frozen=True, slots=True)
class Failing:
    """One connector's receive path failing now: how many events in a row, the last one."""

    connector: str
    in_a_row: int
    event_id: str | None
    error: str

    def line(self) -> str:
        """The problem in words, for ``ps`` and the dashboard."""
        last = self.event_id or "an event without an id"
        return (
            f"{self.connector}: the last {self.in_a_row} events received were not handled "
            f"(last {last}: {self.error}); the log has each one"
        )


@dataclass(slots=True)
class _Tally:
    total: int = 0
    in_a_row: int = 0
    event_id: str | None = None
    error: str = ""


class ReceiveFailures:
    """The app's record of events received and not handled, by connector."""

    def __init__(
        self,
        on_failure: Callable[[str], None] | None = None,
        *,
        keeps_failing: int = KEEPS_FAILING,
    ) -> None:
        """``on_failure``: told the connector's name at each failure (a metrics counter)."""
        self._on_failure = on_failure
        self._keeps_failing = keeps_failing
        self._tallies: dict[str, _Tally] = {}

    def failed(self, connector: str, event_id: str | None, error: BaseException) -> None:
        """``event_id`` on ``connector`` raised ``error`` on its way in: logged with its
        traceback, counted, and one more in the connector's run of failures."""
        log.error(
            "%s: event %s was not handled: %s",
            connector,
            event_id or "(no id)",
            _said(error),
            exc_info=error,
        )
        tally = self._tallies.setdefault(connector, _Tally())
        tally.total += 1
        tally.in_a_row += 1
        tally.event_id = event_id
        tally.error = _said(error)
        if self._on_failure is not None:
            self._on_failure(connector)

    def handled(self, connector: str) -> None:
        """An event on ``connector`` was handled: its run of failures, if any, is over."""
        tally = self._tallies.get(connector)
        if tally is not None and tally.in_a_row:
            if tally.in_a_row >= self._keeps_failing:
                log.warning("%s: events are handled again", connector)
            tally.in_a_row = 0

    def total(self, connector: str) -> int:
        """Failures on ``connector`` since the start."""
        tally = self._tallies.get(connector)
        return 0 if tally is None else tally.total

    def failing(self) -> list[Failing]:
        """The connectors whose receive path keeps failing, by name."""
        return [
            Failing(name, tally.in_a_row, tally.event_id, tally.error)
            for name, tally in sorted(self._tallies.items())
            if tally.in_a_row >= self._keeps_failing
        ]

    def problems(self) -> list[str]:
        """:meth:`failing` in words."""
        return [failing.line() for failing in self.failing()]


def _said(error: BaseException) -> str:
    """The error's type and the start of its first line: a problem line stays short."""
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > _ERROR_CHARS:
        first = first[: _ERROR_CHARS - 1] + "…"
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
