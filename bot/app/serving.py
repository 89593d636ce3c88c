"""The running connectors and their inbound streams: each connector started in turn, each
message handled in its own task, in order within one conversation (connector, room,
thread), so a slow ``stop`` in one room does not hold up another; the connectors stopped
in reverse order.

When a connector's stream ends (console EOF or ``quit``) :class:`Serving` says so through
``on_closed``; a connector that lost its service for good (a :class:`FleetwardenError`) is
kept as :attr:`Serving.failure`, for the app to exit saying why.

Once the stop begins (:meth:`Serving.finish`) a message read is still handed to the router,
marked as read while stopping: an answer to an agent's request runs, any other command is
answered that it was not run (:meth:`~bot.commands.routing.router.Router.handle`). What was
read is finished by the time :meth:`Serving.close` returns (it stops reading first), while
the ledger is still open: waited for until one deadline for both waits (and what was read
while stopping for a few seconds at least), then cancelled, the router settling each message
so cancelled as cancelled.

A message whose handling raised is reported to the app's
:class:`~connectors.receiving.ReceiveFailures` with its event id (logged, counted, a
problem when it keeps happening); the next message is handled as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from connectors.base import Connector, InboundMessage
from connectors.health import HealthReport
from connectors.receiving import ReceiveFailures
from fleet.errors import FleetwardenError

log = logging.getLogger(__name__)

ConversationKey = tuple[str, str, str | None]

GRACE = 5.0
"""Seconds the close waits at least for the messages read while stopping, whatever is left of
the stop's deadline: each only answers (or refuses), and is claimed and settled so."""


class Handles(Protocol):
    """Where the connectors' messages go: the commands' router
    (:class:`~bot.commands.routing.router.Router`)."""

    async def handle(
        self, connector: Connector, msg: InboundMessage, *, stopping: bool = False
    ) -> None: ...


class Serving:
    """The tasks reading the connectors, and the messages they handed over in flight."""

    def __init__(
        self,
        *,
        on_closed: Callable[[], None],
        failures: ReceiveFailures | None = None,
        grace: float = GRACE,
    ) -> None:
        """``grace``: how long :meth:`close` waits at least for what was read while stopping,
        once the deadline :meth:`finish` set has passed."""
        self._on_closed = on_closed
        self.failures = failures if failures is not None else ReceiveFailures()
        self.router: Handles | None = None  # the connectors' messages go there, from start
        self.failure: FleetwardenError | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._consumers: set[asyncio.Task[None]] = set()
        self._conversations: dict[ConversationKey, asyncio.Lock] = {}
        self._stopping = False  # the stop began: what is read now runs no new command
        self._deadline: float | None = None  # until when the stop waits for what was read
        self._grace = grace
        self.connectors: list[Connector] = []  # started, in order
        self._attached: list[Connector] = []  # known by name only (:meth:`attach`)

    async def start(self, connectors: Iterable[Connector], router: Handles) -> None:
        """Start each connector in turn and read its inbound stream, its messages handed to
        ``router`` (the commands')."""
        self.router = router
        for connector in connectors:
            await connector.start()
            self.connectors.append(connector)
            self.serve(connector)

    def attach(self, connector: Connector) -> None:
        """Know ``connector`` by name (:meth:`named`) without reading it or posting notices
        through it: one whose commands come another way (the shell's, through the control
        socket), for the answers given there later."""
        self._attached.append(connector)

    def running(self) -> list[Connector]:
        """The connectors started so far, in order (what notices and asks are posted through)."""
        return self.connectors

    def link_reports(self) -> list[HealthReport]:
        """Each running connector's link to its service, as it last saw it."""
        return [connector.link.report() for connector in self.connectors]

    def named(self, name: str) -> Connector | None:
        """The running (or attached) connector called ``name``, if there is one."""
        return next((c for c in (*self.connectors, *self._attached) if c.name == name), None)

    async def stop_connectors(self) -> None:
        """Stop the connectors, the last started first; one failing stops none of the rest."""
        for connector in reversed(self.connectors):
            try:
                await connector.stop()
            except Exception:
                log.exception("connector %s did not stop cleanly", connector.name)

    def serve(self, connector: Connector) -> None:
        """Start reading ``connector``'s inbound stream."""
        task = asyncio.create_task(self._consume(connector), name=f"inbound-{connector.name}")
        self._consumers.add(task)
        task.add_done_callback(self._consumers.discard)

    async def finish(self, *, within: float) -> None:
        """Let the messages in flight finish (cancelled ``within`` seconds from now, what is
        read while stopping too: :meth:`close` waits only what is left of them). From
        here on a message read runs no new command (only an answer to an agent's request):
        the stop goes on to close what a command would need (the ledger among them)."""
        self._stopping = True
        self._deadline = asyncio.get_running_loop().time() + within
        await self._drain()

    async def close(self) -> None:
        """Stop reading the connectors, and finish what was read while stopping (waited for
        until the deadline :meth:`finish` set, or ``grace`` seconds if that is later)."""
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        await self._drain(at_least=self._grace if self._stopping else 0.0)

    async def _drain(self, at_least: float = 0.0) -> None:
        """Wait for the messages in flight until the deadline :meth:`finish` set (one for
        both waits), at least ``at_least`` seconds, then cancel the rest."""
        if self._in_flight:
            left = 0.0
            if self._deadline is not None:
                left = max(0.0, self._deadline - asyncio.get_running_loop().time())
            _, pending = await asyncio.wait(set(self._in_flight), timeout=max(left, at_least))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _consume(self, connector: Connector) -> None:
        try:
            async for message in connector.inbound():
                task = asyncio.create_task(self._handle(connector, message, self._stopping))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
        except asyncio.CancelledError:
            raise
        except FleetwardenError as exc:  # the service is lost for good, and says why
            log.error("connector %s stopped: %s", connector.name, exc)
            self.failure = self.failure or exc
        except Exception:
            log.exception("connector %s failed", connector.name)
        log.info("connector %s closed its inbound stream; stopping", connector.name)
        self._on_closed()

    async def _handle(self, connector: Connector, message: InboundMessage, stopping: bool) -> None:
        key = (message.connector, message.room, message.thread_id)
        lock = self._conversations.setdefault(key, asyncio.Lock())
        async with lock:
            if self.router is None:
                return
            try:
                await self.router.handle(connector, message, stopping=stopping)
            except Exception as exc:
                self.failures.failed(connector.name, message.event_id, exc)
            else:
                self.failures.handled(connector.name)
