"""What people were asked and what they did, as the Approvals and Audit pages show it: each
ask of an agent's with where it was posted in chat (linked) and how it was answered, and the
audit trail of commands — every text in them redacted, an ask's subject guarded."""

from __future__ import annotations

from collections.abc import Callable

from bot.approvals.shown import TOOL_CHARS
from bot.dashboard.pages.shapes import Json, Redacted, iso
from connectors.base import Connector, EventId, RoomId, ThreadId
from fleet.approvals.spend import CHANNEL as SPEND
from fleet.ledger.records.approvals import ApprovalPost
from fleet.ledger.stores.operators.approvals import ApprovalsStore
from fleet.ledger.stores.operators.audit import AuditStore
from fleet.timing.clock import Clock

LINE_CHARS = 500
"""Characters of an ask's subject (its command, its path), a host's or an account's
problem, on their one line (chat's alert shows a subject whole)."""


class AskedViews:
    """The Approvals and Audit pages' rows, read from the ledger."""

    def __init__(
        self,
        approvals: ApprovalsStore,
        audit: AuditStore,
        clock: Clock,
        connector_named: Callable[[str], Connector | None],
        redacted: Redacted,
    ) -> None:
        self._approvals = approvals
        self._audit = audit
        self._clock = clock
        self._connector_named = connector_named  # links to chat messages
        self._redacted = redacted

    async def approvals(self) -> list[Json]:
        recent = await self._approvals.recent_approvals(100)
        now = self._clock.now()
        found = []
        for request in recent:
            posts = await self._approvals.approval_posts(request.id)
            links = [
                link
                for post in posts
                if (chat := self._connector_named(post.connector)) is not None
                and (link := chat.message_link(*_where(post)))
            ]
            ended = request.answered_at or now  # an open one: how long it has waited
            found.append(
                {
                    "id": request.id,
                    "agent": request.agent,
                    "host": request.host,
                    "tool": self._redacted.line(request.tool, TOOL_CHARS),
                    "spend": request.channel == SPEND,  # a run's ask at its cap, ours
                    "subject": self._redacted.line(request.subject, LINE_CHARS),
                    "state": request.state.value,
                    "asked_at": iso(request.asked_at),
                    "deadline": iso(request.deadline),
                    "answered_by": request.answered_by,
                    "answered_at": iso(request.answered_at),
                    "how": request.how,
                    "decision": request.decision.value if request.decision else None,
                    "waited_seconds": round((ended - request.asked_at).total_seconds(), 1),
                    "open": request.answered_at is None and request.state.value == "open",
                    "chat_links": links,
                    "posted_in": [f"{p.connector}:{p.room}" for p in posts],
                }
            )
        found.sort(key=lambda r: (not r["open"], r["asked_at"] or ""), reverse=False)
        return found

    async def audit(self, limit: int = 200) -> list[Json]:
        entries = await self._audit.audit_entries(limit=max(1, min(limit, 1_000)))
        return [
            {
                "id": e.id,
                "at": iso(e.at),
                "who": e.sender,
                "connector": e.connector,
                "room": e.room,
                "thread": e.thread,
                "command": e.command,
                "text": self._redacted(e.text),
                "outcome": str(e.outcome),
                "detail": self._redacted(e.detail) if e.detail else e.detail,
                "source": e.source,
            }
            for e in entries
        ]


def _where(post: ApprovalPost) -> tuple[RoomId, EventId, ThreadId | None]:
    thread = ThreadId(post.thread) if post.thread else None
    return RoomId(post.room), EventId(post.event_id), thread
