"""What agents said to each other, as the dashboard shows it: an agent's page lists the
messages it sent and received, ``/api/messages`` (``?agent=NAME``, ``?limit=N``) gives
them as JSON, and ``/metrics`` counts them by kind and state.

Every message's text is an agent's and hostile: redacted again by the app's redactor (a
secret learnt after it was sent), its invisible characters shown as code points (as the
guard shows a short text's, :mod:`fleet.redaction.guard`), cut when long; a name an agent
typed (the receiver of a refused message) and a refusal's reason are guarded as short texts.
The page escapes them (the templates' autoescape), the JSON is data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from bot.dashboard.pages.shapes import Json, Redacted, iso
from fleet.ledger.records.peers import MessageKind, MessageRecord, MessageState
from fleet.ledger.stores.peers.messages import MessagesStore
from fleet.names import is_agent_name
from fleet.redaction.guard import HIDDEN, cut
from fleet.redaction.invisible import reveal, visible

ON_PAGE: Final = 20
"""Messages an agent's page shows, the newest."""
API_DEFAULT: Final = 50
API_MOST: Final = 500
"""The most messages ``/api/messages`` gives at once (``?limit=N``)."""
TEXT_CHARS: Final = 4000
"""Characters of a message's text shown; a longer one is cut in the middle, both ends shown."""
WHY_CHARS: Final = 500


class BadQuery(ValueError):
    """``/api/messages`` was asked something it cannot answer: a 400, saying what to send."""


def message_query(query: Mapping[str, str]) -> tuple[str | None, int]:
    """``?agent=NAME&limit=N`` read: the agent (``None``: every agent's) and how many."""
    agent = query.get("agent") or None
    if agent is not None and not is_agent_name(agent):
        raise BadQuery("?agent= takes an agent's name, e.g. ?agent=coder-1")
    text = query.get("limit", "")
    if not text:
        return agent, API_DEFAULT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text[:7]) <= API_MOST:
        raise BadQuery(f"?limit= takes a number of messages from 1 to {API_MOST}, e.g. ?limit=100")
    return agent, int(text)


class MessageViews:
    """Messages between agents, read from the ledger and shaped for the pages."""

    def __init__(
        self, messages: MessagesStore, redacted: Redacted, head: Callable[[], Json]
    ) -> None:
        self._messages = messages
        self._redacted = redacted
        self._head = head

    async def rows(self, agent: str | None, limit: int = ON_PAGE) -> list[Json]:
        """The newest ``limit`` messages (``agent``'s, sent or received), newest first."""
        return [self.row(record) for record in await self._messages.recent(agent, limit)]

    async def page(self, agent: str | None, limit: int) -> Json:
        """What ``/api/messages`` answers."""
        return {**self._head(), "agent": agent, "messages": await self.rows(agent, limit)}

    async def counts(self) -> dict[tuple[MessageKind, MessageState], int]:
        """Every message, by kind and state (``/metrics``)."""
        return await self._messages.counts()

    def row(self, record: MessageRecord) -> Json:
        line = self._redacted.line
        receiver = record.receiver
        return {
            "id": record.id,
            "sender": record.sender,
            "receiver": receiver if is_agent_name(receiver) else line(receiver, 64),
            "kind": record.kind,
            "state": record.state,
            "why": line(record.why, WHY_CHARS) if record.why else "",
            "text": self._text(record.text),
            "task_id": record.task_id,
            "sender_run": record.sender_run,
            "sent_at": iso(record.sent_at),
            "delivered_at": iso(record.delivered_at),
            "delivered_run": record.delivered_run,
        }

    def _text(self, text: str) -> str:
        """A message's text with its line breaks: redacted, nothing in it hidden, bounded."""
        text = cut(text, TEXT_CHARS)
        redacted, seen = self._redacted(text), visible(text)
        if redacted == seen:
            return reveal(text)
        shown = visible(redacted)  # shown, they would split the secret the redactor found
        return f"{HIDDEN} {shown}" if seen != text else shown
