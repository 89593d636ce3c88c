"""Telling the other connectors when one loses its service, and when it is back.

:class:`LinkWatch` reads every running connector's :class:`~connectors.health.LinkHealth`,
woken at each up/down change and when a connector would be confirmed down or back, and
posts what :class:`~connectors.health.DownTeller` decides into the home room of every
*other* connector that is up: the one down cannot be told. A connector is told down once,
after it stayed down ``down_after_seconds`` (the config's ``connectors.down_after_seconds``),
and back once when it stayed up as long — never at each retry, nor at a sync that works
once through an outage. The last error is quoted as the service's words, guarded; the
connector's send redacts it with the rest (:mod:`bot.chat.redacting`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from bot.text.agent_text import quotes_escaped
from connectors.base import Connector, OutboundMessage
from connectors.errors import ConnectorError
from connectors.health import DownTeller, Tell
from fleet.redaction.guard import quote
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)


class LinkWatch:
    """The task that tells the other connectors' rooms of an outage, once each way."""

    def __init__(
        self,
        connectors: Callable[[], Sequence[Connector]],
        clock: Clock,
        down_after_seconds: float,
    ) -> None:
        self._connectors = connectors
        self._clock = clock
        self._teller = DownTeller(down_after_seconds)
        self._wake = asyncio.Event()
        self._watched: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="link-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before reading: a change from now on wakes the wait
            connectors = list(self._connectors())
            for connector in connectors:
                if connector.name not in self._watched:
                    self._watched.add(connector.name)
                    connector.link.subscribe(lambda _: self._wake.set())
            reports = {c.name: c.link.report() for c in connectors}
            now = self._clock.now()
            for tell in self._teller.step(reports, now):
                await self._tell(connectors, tell)
            wait = self._teller.next_check(reports, now)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if wait is None else wait + 0.01):
                    await self._wake.wait()

    async def _tell(self, connectors: Sequence[Connector], tell: Tell) -> None:
        markdown = said(tell)
        log.warning("%s", markdown.replace("**", ""))
        for connector in connectors:
            room = connector.home_room
            if connector.name == tell.report.connector or room is None:
                continue
            if not connector.link.report().up:
                continue  # down too: it cannot be told either
            message = OutboundMessage(
                room=room,
                markdown=markdown,
                tone="warning" if tell.down else "ok",
                alert=tell.down,
            )
            try:
                await connector.send(message)
            except ConnectorError as exc:
                log.warning("%s was not told on %s: %s", tell.report.connector, connector.name, exc)
            except Exception:
                log.exception("could not tell %s of %s", connector.name, tell.report.connector)


def said(tell: Tell) -> str:
    """The notice for ``tell``: which connector, since when, and its last error."""
    report = tell.report
    since = report.since.strftime("%H:%M:%S UTC")
    if not tell.down:
        return f"**{report.connector}** is back (connected since {since})."
    why = f": its last error was {quote(report.last_error)}" if report.last_error else ""
    what = "is logged out" if report.connected and not report.logged_in else "is down"
    text = (
        f"**{report.connector}** {what} since {since}{why}. Commands sent there go "
        "unanswered until it is back; this is said again when it is."
    )
    return quotes_escaped(text)
