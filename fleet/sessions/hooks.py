"""What the run keeper tells the live sessions (:class:`~fleet.sessions.live.LiveSessions`)
of the runs it launches, reattaches and ends; an interface, so the keeper needs none of
the sessions' machinery."""

from __future__ import annotations

from typing import Protocol

from fleet.ledger.records.rows import RunRecord
from fleet.model import AgentSpec, ExitInfo
from fleet.names import AgentName


class SessionHooks(Protocol):
    async def started(
        self, spec: AgentSpec, run: RunRecord, *, protocol: str, prompt: str | None, offset: int
    ) -> None:
        """``run`` was launched speaking ``protocol``; ``prompt`` is its first turn."""
        ...

    async def reattached(self, spec: AgentSpec, run: RunRecord) -> None:
        """``run`` was found running after a restart of Fleetwarden."""
        ...

    async def ended(self, name: AgentName, run: RunRecord, info: ExitInfo, why: str) -> None:
        """``run`` ended (``why``: how, in words)."""
        ...
