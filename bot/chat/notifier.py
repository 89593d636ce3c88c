"""The one notice board of a running Fleetwarden: where news about the fleet is posted.

Every notice — an agent that failed or was restarted by the watchdog, a budget's step up
or down the ladder, the pacing report — goes through :class:`Notifier`. It knows every
started connector's home room and, from the ledger, the thread each agent has in each room
(its current one: a re-spawned agent's new thread replaces the old), so nothing else fans a
message out to rooms and threads. A notice about an agent whose command is being answered
waits for that answer (:mod:`bot.chat.ordering`). While the app starts, notices are held
(:meth:`Notifier.hold`) and posted, in order, once the connectors run
(:meth:`Notifier.release`): news at boot — an autostart agent refused, a queued launch that
failed — reaches chat, not only the log.

An alert (:attr:`fleet.notices.Notice.alert`) goes out as one on every connector; on the
connector the operator who started its agent used, it mentions them (elsewhere the
connector mentions its own on-call users).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Protocol

from bot.chat.ordering import Ordering
from connectors.base import Connector, OutboundMessage, RoomId, ThreadId, UserId
from connectors.errors import ConnectorError
from fleet.notices import Delivery, Notice, who_on

log = logging.getLogger(__name__)


class TopicThreads(Protocol):
    """Where each topic's threads are (the ledger)."""

    async def threads_for_topic(self, connector: str, topic: str) -> list[tuple[str, str]]:
        """Every (room, thread id) bound to ``topic`` on ``connector``, oldest first."""
        ...


class Notifier:
    """Posts each :class:`~fleet.notices.Notice` into the threads of its agents and, as it
    asks, the home rooms, on every connector that runs.

    ``connectors`` is called at each post, so connectors started after the notifier was made
    are reached, and stopped ones are not. ``ordering`` is shared with the router.
    """

    def __init__(
        self,
        threads: TopicThreads,
        connectors: Callable[[], Sequence[Connector]],
        ordering: Ordering | None = None,
    ) -> None:
        self._threads = threads
        self._connectors = connectors
        self.ordering = ordering or Ordering()
        self._held: list[Notice] | None = None

    def hold(self) -> None:
        """Keep every notice posted from now on until :meth:`release` (the connectors that
        would carry them are not started yet)."""
        if self._held is None:
            self._held = []

    async def release(self) -> None:
        """Post the held notices, oldest first, and post the next ones at once."""
        held, self._held = self._held or [], None
        for notice in held:
            delivery = await self.post(notice)
            if not delivery.ok:
                log.warning("a notice held at start was not posted: %s", notice.markdown)

    async def post(self, notice: Notice) -> Delivery:
        """Send ``notice`` everywhere it belongs; one place failing does not stop the
        others. Failures are logged and returned. A notice that must wait for an answer
        (see :mod:`bot.chat.ordering`) is queued: nothing failed yet, and what fails later is
        logged."""
        if self._held is not None:
            self._held.append(notice)
            return Delivery()
        if self.ordering.defer((*notice.agents, *notice.about), partial(self._post_now, notice)):
            return Delivery()
        return await self._post_now(notice)

    async def _post_now(self, notice: Notice) -> Delivery:
        failed: list[str] = []
        for connector in self._connectors():
            try:
                places = await self._places(connector, notice)
            except Exception as exc:  # the ledger: the other connectors still get it
                log.exception("could not find where a notice goes on %s", connector.name)
                failed.append(f"{connector.name}: {exc}")
                continue
            mentions = mentioned(notice, connector.name)
            for room, thread in places:
                message = OutboundMessage(
                    room=room,
                    markdown=notice.markdown,
                    thread_id=thread,
                    images=notice.images,
                    tone=notice.tone,
                    alert=notice.alert,
                    mentions=mentions,
                )
                try:
                    await connector.send(message)
                except ConnectorError as exc:
                    log.warning("a notice was not posted on %s: %s", connector.name, exc)
                    failed.append(f"{connector.name}: {exc}")
                except Exception as exc:
                    log.exception("could not post a notice on %s", connector.name)
                    failed.append(f"{connector.name}: {exc}")
        return Delivery(tuple(failed))

    @contextlib.asynccontextmanager
    async def typing(self, agent: str) -> AsyncIterator[None]:
        """The bot shows it is typing in ``agent``'s threads, on every connector with
        threads, while the block runs (its feed has output waiting to be posted)."""
        async with contextlib.AsyncExitStack() as stack:
            for connector in self._connectors():
                if not connector.has_threads:
                    continue
                try:
                    places = await self._threads.threads_for_topic(connector.name, agent)
                except Exception:
                    log.exception("could not find %s's threads on %s", agent, connector.name)
                    continue
                for room, thread in places:
                    await stack.enter_async_context(
                        connector.typing(RoomId(room), ThreadId(thread))
                    )
            yield

    async def _places(
        self, connector: Connector, notice: Notice
    ) -> list[tuple[RoomId, ThreadId | None]]:
        """The agents' threads on ``connector``, then its home room where the notice asks
        for it (or none of its agents has a thread there), without repeats."""
        places: list[tuple[RoomId, ThreadId | None]] = []
        if notice.feed and connector.has_threads:
            for agent in notice.agents:
                for room, thread in await self._threads.threads_for_topic(connector.name, agent):
                    places.append((RoomId(room), ThreadId(thread)))
            return list(dict.fromkeys(places))
        for agent in notice.agents:
            for room, thread in await self._threads.threads_for_topic(connector.name, agent):
                places.append((RoomId(room), ThreadId(thread)))
        if (notice.home_too or not places) and connector.home_room is not None:
            places.append((connector.home_room, None))
        return list(dict.fromkeys(places))


def mentioned(notice: Notice, connector: str) -> tuple[UserId, ...]:
    """Who ``notice`` wakes on ``connector``: the operator who started its agent, if it is
    an alert and they use ``connector``; else nobody named (the connector's on-call)."""
    who = who_on(notice.by) if notice.alert else None
    if who is None or who[1] != connector:
        return ()
    return (UserId(who[0]),)
