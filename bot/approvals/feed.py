"""Approval requests shown in chat, and their messages edited when they end.

A listener of the :class:`~fleet.approvals.service.Approvals` service: for each request
opened, ONE message in each of the agent's threads on every running connector (its home
room where it has none there), an alert that mentions whoever started the agent on the
connector they used, else the connector's on-call users. Each message is recorded
(:meth:`~fleet.approvals.service.Approvals.record_post`), so a reaction on it finds the
request, and the audit trail gets the request. The message offers the request's answers as
buttons where the medium has them (:func:`~bot.approvals.render.ask_choices`). When the
request ends, each of its messages is edited to show who answered and how, the timeout, or
why it closed: the edit replaces it in place, buttons and all.

A request decided at once (a rule passed it, or the agent has too many open) is a one-line
notice in the agent's threads, no alert; of the cap's denials only the first is told, until
the agent's next request is shown again (the service counts withdrawn asks against the cap
for a while, so opening and withdrawing asks in a loop cannot ping past it).

It also closes the requests of a run that ended (a fleet event), whatever runtime asked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial

from bot.approvals.render import ask_choices, ask_message, decided_notice, ended_message
from bot.approvals.shown import starter_id
from bot.chat.ordering import Ordering
from connectors.base import Connector, EventId, OutboundMessage, RoomId, ThreadId
from connectors.errors import ConnectorError
from fleet.approvals.service import ApprovalEvent, Approvals
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.approvals import ApprovalPost, ApprovalRequest
from fleet.ledger.stores.operators.audit import AuditStore
from fleet.ledger.stores.operators.chat import ChatStore
from fleet.notices import Notice, NoticeBoard

log = logging.getLogger(__name__)

Connectors = Callable[[], Sequence[Connector]]
Starter = Callable[[ApprovalRequest], Awaitable[str | None]]
"""Who started the run that asked (``"@ann:hs on matrix"``), when the request says not."""


class ApprovalFeed:
    """Shows requests in chat and edits their messages (see the module)."""

    def __init__(
        self,
        approvals: Approvals,
        chat: ChatStore,
        audit: AuditStore,
        connectors: Connectors,
        notices: NoticeBoard,
        *,
        prefix_for: Callable[[str], str],
        starter: Starter | None = None,
        ordering: Ordering | None = None,
    ) -> None:
        """``ordering``: the notifier's, so that a request asked while its agent's spawn is
        being answered is shown after that answer, in the thread the answer opens."""
        self._approvals = approvals
        self._chat = chat
        self._audit = audit
        self._connectors = connectors
        self._notices = notices
        self._prefix_for = prefix_for
        self._starter = starter
        self._capped: set[str] = set()  # agents whose cap denial was told
        self._ordering = ordering

    async def on_approval(self, event: ApprovalEvent) -> None:
        request = event.request
        post = partial(self._tell, event)
        if self._ordering is not None and self._ordering.defer((request.agent,), post):
            return  # after the answer to the command about its agent (a spawn)
        await post()

    async def _tell(self, event: ApprovalEvent) -> None:
        request = event.request
        if not event.opened:
            if request.how in ("timeout", "closed", "withdrawn"):  # nobody answered: audited
                await self._audit.record_audit(
                    "fleetwarden",
                    request.how,
                    "",
                    None,
                    request.reason or "",
                    "approval",
                    "ok",
                    f"request {request.id} of {request.agent}: {request.state.value}",
                    source=f"approval:{request.id}",
                )
            await self._edit(request)
        elif request.state.is_open:
            self._capped.discard(request.agent)  # under the cap again: its next denial is told
            await self._show(request)
        elif request.how != "policy" or request.agent not in self._capped:
            if request.how == "policy":
                self._capped.add(request.agent)
            text = decided_notice(request)
            await self._notices.post(Notice(text, agents=(request.agent,), feed=True))

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A run that ended takes its open requests with it."""
        if event.kind is EventKind.ENDED and event.run_id is not None:
            await self._approvals.close_run(event.run_id, f"{event.agent} ended")

    async def _show(self, request: ApprovalRequest) -> None:
        if request.starter is None and self._starter is not None:
            try:
                starter = await self._starter(request)
            except Exception:  # who to wake is a nicety: the alert goes out regardless
                log.warning("could not read who started %s", request.agent, exc_info=True)
                starter = None
            request = replace(request, starter=starter)
        for connector in self._connectors():
            try:
                await self._show_on(connector, request)
            except Exception:  # one connector failing does not keep the others from it
                log.exception("approval %s was not shown on %s", request.id, connector.name)

    async def _show_on(self, connector: Connector, request: ApprovalRequest) -> None:
        places: list[tuple[RoomId, ThreadId | None]] = []
        if connector.has_threads:
            bound = await self._chat.threads_for_topic(connector.name, request.agent)
            places.extend((RoomId(room), ThreadId(thread)) for room, thread in bound)
        if not places and connector.home_room is not None:
            places.append((connector.home_room, None))
        mention = starter_id(request, connector.name)
        text = ask_message(request, self._prefix_for(connector.name), threads=connector.has_threads)
        for room, place in dict.fromkeys(places):
            sent = await connector.send(
                OutboundMessage(
                    room,
                    text,
                    thread_id=place,
                    tone="warning",
                    alert=True,
                    mentions=(mention,) if mention is not None else (),
                    choices=ask_choices(request),
                )
            )
            if not sent.event_ids:
                continue
            post = ApprovalPost(request.id, connector.name, room, place, sent.event_ids[0])
            await self._approvals.record_post(post)
            await self._audit.record_audit(
                connector.name,
                f"agent:{request.agent}",
                room,
                place,
                f"{request.tool}: {request.subject}"[:500],
                "approval",
                "ok",
                f"request {request.id} ({request.kind.value}) shown as {sent.event_ids[0]}",
                source=f"approval:{request.id}",
            )

    async def _edit(self, request: ApprovalRequest) -> None:
        named = {c.name: c for c in self._connectors()}
        text = ended_message(request)
        for post in await self._approvals.posts(request.id):
            connector = named.get(post.connector)
            if connector is None:
                continue
            try:
                thread = None if post.thread is None else ThreadId(post.thread)
                await connector.edit(RoomId(post.room), EventId(post.event_id), text, thread)
            except ConnectorError as exc:
                log.warning("approval %s: its message was not edited: %s", request.id, exc)
            except Exception:
                log.exception("approval %s: could not edit its message", request.id)
