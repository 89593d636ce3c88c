"""Keeping :class:`~fleet.budgets.run_caps.RunCaps` in step with the fleet: each run is
armed with its agent's cap (``AgentSpec.run_budget``, as it was launched) when it starts
and disarmed when it ends; when Fleetwarden starts, the runs still going are armed again
with what they spent so far (the ledger's usage since each began). A run reaching its cap
is posted once — an alert in the agent's threads — as budgets' limits are.
"""

from __future__ import annotations

import asyncio
import logging

from fleet.budgets.run_caps import RunCaps
from fleet.ledger import Ledger
from fleet.notices import Notice, NoticeBoard
from fleet.status import EventKind, FleetEvent

log = logging.getLogger(__name__)


class RunCapWatch:
    """Arms ``caps`` from the fleet's events and the ledger; posts capped runs."""

    def __init__(self, caps: RunCaps, ledger: Ledger, notices: NoticeBoard | None) -> None:
        self.caps = caps
        self._ledger = ledger
        self._notices = notices
        self._posting: set[asyncio.Task[None]] = set()
        caps.on_capped = self._on_capped

    async def restore(self) -> None:
        """Arm every run the ledger believes open, with what it has spent since it began
        (call before the fleet starts: runs found ended then are disarmed by their next
        start)."""
        for run in await self._ledger.open_runs():
            record = await self._ledger.get_agent(run.agent)
            if record is None or record.spec.run_budget is None:
                continue
            spent = await self._ledger.spent_since(run.agent, run.started_at)
            self.caps.arm(run.agent, run.id, record.spec.run_budget, run.started_at, spent)

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A run started (armed with its agent's cap) or ended (disarmed)."""
        if event.run_id is None:
            return
        if event.kind is EventKind.ENDED:
            self.caps.end(event.agent, event.run_id)
        elif event.kind is EventKind.STARTED:
            record = await self._ledger.get_agent(event.agent)
            run = await self._ledger.last_run(event.agent)
            if record is None or run is None or run.id != event.run_id:
                return
            self.caps.arm(event.agent, run.id, record.spec.run_budget, run.started_at)

    def _on_capped(self, agent: str, message: str) -> None:
        log.info("run cap: %s", message)
        if self._notices is None:
            return
        notices, notice = self._notices, Notice(message, tone="error", agents=(agent,), alert=True)

        async def post() -> None:
            await notices.post(notice)  # the board logs the places that failed

        task = asyncio.get_running_loop().create_task(post(), name="run-cap")
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def drain(self) -> None:
        """Wait for the capped runs' notices to be posted (at stop)."""
        if self._posting:
            await asyncio.gather(*self._posting, return_exceptions=True)
