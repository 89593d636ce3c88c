"""The rules a message (or a task handed on) from one agent to another must pass, and the
words each refusal says: the peer is unknown, not one of the sender's peers
(``talks_to``), the sender itself; the text too long; the sender past its rate
(``messages_per_hour`` over the past hour); the peer's queue full (the messages and the
tasks handed on that wait for it).

Whether one agent may reach another at all is one decision, :meth:`Rules.reach`, read from
the roster as it is at that moment: when a message is sent and when it is delivered (a
``wake: start`` peer's launch too), when a task is handed on and when it starts, and — for
a review agent — when its verdict comes (:meth:`Rules.may_review`). A right a reload or a
restart took away is gone for what still waits."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Final, Protocol

from fleet.errors import FleetError
from fleet.ledger.stores.peers.messages import MessagesStore
from fleet.model import AgentSpec
from fleet.timing.clock import Clock

HOUR: Final = timedelta(hours=1)
REFUSALS_KEPT: Final = 100
"""The most refusals of one sender recorded in an hour; past them its calls are still
refused, in words, but no longer each kept (a loop of refused calls cannot fill the
ledger)."""
NAME_CHARS: Final = 64
"""The most of a name an agent wrote that is kept or said (an unknown peer's, say)."""
_NOT_IN_NAME = re.compile(r"[^\x21-\x7e]")


class Specs(Protocol):
    """Who the agents are (:class:`fleet.supervisor.fleet.Fleet`)."""

    async def knows(self, name: str) -> bool: ...

    async def spec(self, name: str) -> AgentSpec: ...

    def roster(self) -> list[AgentSpec]: ...


class Rules:
    """Whether one agent may send another a text now, and if not, why in words."""

    def __init__(
        self, *, messages: MessagesStore, fleet: Specs, clock: Clock, max_chars: int, queue: int
    ) -> None:
        self._messages = messages
        self._fleet = fleet
        self._clock = clock
        self.max_chars = max_chars
        self.queue = queue

    @staticmethod
    def named(name: str) -> str:
        """``name`` as it is kept and said: printable, on one line, at most
        :data:`NAME_CHARS` characters (an agent may write anything there)."""
        cleaned = _NOT_IN_NAME.sub("?", name)
        return cleaned if len(cleaned) <= NAME_CHARS else cleaned[: NAME_CHARS - 1] + "…"

    async def sender_spec(self, sender: str) -> AgentSpec | None:
        """``sender``'s settings now, or ``None`` when it is no longer known."""
        try:
            return await self._fleet.spec(sender)
        except FleetError:
            return None

    def in_roster(self, agent: str) -> AgentSpec | None:
        """``agent``'s entry in the roster as it is now, or ``None`` (an agent a reload took
        out runs on, but its right to reach others went with its entry)."""
        return next((spec for spec in self._fleet.roster() if spec.name == agent), None)

    async def reach(self, sender: str, receiver: str, *, later: bool = False) -> str | None:
        """Why ``sender`` may not reach ``receiver`` now, or ``None``: the one decision for
        a message sent or delivered, a peer woken by one, a task handed on or started. The
        sender must be in the roster now and name ``receiver`` in its ``talks_to`` now.
        ``later``: said of a message or task that waited (to the operator and both
        agents' threads), not to the sender at its call."""
        shown = self.named(receiver)
        spec = self.in_roster(sender)
        if spec is None:
            if later:
                return f"{self.named(sender)} is no longer in the roster"
            if await self.sender_spec(sender) is None:
                return f"no agent named {self.named(sender)} sends messages here"
            return "you are not in the roster now, so you may message no agent"
        if receiver == sender:
            return "that is you: `fw-msg peers` lists the agents you may write to"
        if not await self._fleet.knows(receiver):
            if later:
                return f"no agent named {shown} is known here now"
            return f"no agent named {shown}: `fw-msg peers` lists yours"
        if receiver not in spec.talks_to:
            if later:
                return f"{shown} is no longer one of {self.named(sender)}'s peers"
            peers = ", ".join(spec.talks_to) or "none"
            return f"{shown} is not one of your peers (talks_to: {peers})"
        return None

    def may_review(self, reviewer: str, named: str | None) -> str | None:
        """Why ``reviewer``'s verdict may not be taken now, or ``None``: it must be in the
        roster now and be ``named``, the review agent its round's repository (or forge)
        names now."""
        if self.in_roster(reviewer) is None:
            return f"{self.named(reviewer)} is no longer in the roster"
        if named != reviewer:
            now = f"its review agent is {self.named(named)} now" if named else "it has none now"
            return f"{self.named(reviewer)} no longer reviews this repository's work ({now})"
        return None

    async def why_not(self, sender: str, receiver: str, text: str) -> str | None:
        """Why ``sender`` may not send ``text`` to ``receiver`` now, or ``None``."""
        unreachable = await self.reach(sender, receiver)
        spec = self.in_roster(sender)
        if unreachable is not None or spec is None:  # reach refuses a sender not in it
            return unreachable
        if not text.strip():
            return "the text is empty: say something"
        if len(text) > self.max_chars:
            return f"{len(text)} characters, at most {self.max_chars}: make it shorter"
        rate = await self.past_rate(sender, spec.messages_per_hour)
        if rate is not None:
            return rate
        waiting = await self._messages.count_queued(receiver)
        if waiting >= self.queue:
            return (
                f"{self.named(receiver)} has {waiting} messages waiting: try again once it "
                "has read them"
            )
        return None

    async def keeps_refusal(self, sender: str) -> bool:
        """Whether one more refusal of ``sender`` is recorded: fewer than
        :data:`REFUSALS_KEPT` were over the past hour."""
        since = self._clock.now() - HOUR
        return await self._messages.refused_since(sender, since) < REFUSALS_KEPT

    async def past_rate(self, sender: str, limit: int) -> str | None:
        """Why ``sender`` has sent all it may this hour (``limit``), or ``None``."""
        now = self._clock.now()
        sent = await self._messages.sent_since(sender, now - HOUR)
        if sent < limit:
            return None
        again = await self._again(sender, now, sent)
        return f"you sent {sent} messages this hour, your limit: try again after {again:%H:%M} UTC"

    async def _again(self, sender: str, now: datetime, sent: int) -> datetime:
        """When the oldest of the messages counted this hour stops counting."""
        recent = await self._messages.recent(sender, limit=max(4 * sent, 100))
        counted = [
            m.sent_at
            for m in recent
            if m.sender == sender
            and (m.state != "refused" or m.task_id is not None)
            and m.sent_at >= now - HOUR
        ]
        oldest = min(counted) if counted else now
        return oldest + HOUR + timedelta(minutes=1)
