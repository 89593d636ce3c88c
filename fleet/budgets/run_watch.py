"""Keeping :class:`~fleet.budgets.run_caps.RunCaps` in step with the fleet: each run is
armed with its agent's cap (``AgentSpec.run_budget``, as it was launched) when it starts
and disarmed when it ends; when Fleetwarden starts, the runs still going are armed again
with what they spent so far (the ledger's usage since each began). A run reaching its cap
is posted once — an alert in the agent's threads — as budgets' limits are, and its cutoff
carried out: ``freeze`` pauses the run (:meth:`~fleet.supervisor.Fleet.freeze`, lifted by
``resume NAME`` or the run's end), ``stop`` stops it, recorded as cut off.
"""

from __future__ import annotations

import asyncio
import logging

from fleet.budgets.run_caps import RunCaps
from fleet.errors import AgentNotRunning, FleetError
from fleet.ledger import Ledger
from fleet.notices import Notice, NoticeBoard
from fleet.status import EventKind, FleetEvent
from fleet.supervisor import Fleet
from fleet.transcript.story import Outcome

log = logging.getLogger(__name__)


class RunCapWatch:
    """Arms ``caps`` from the fleet's events and the ledger; posts capped runs."""

    def __init__(self, caps: RunCaps, ledger: Ledger, notices: NoticeBoard | None) -> None:
        self.caps = caps
        self._ledger = ledger
        self._notices = notices
        self._posting: set[asyncio.Task[None]] = set()
        self._fleet: Fleet | None = None
        caps.on_capped = self._on_capped

    def attach(self, fleet: Fleet) -> None:
        """Follow ``fleet``'s runs, and carry out capped runs' cutoffs on it."""
        self._fleet = fleet
        fleet.subscribe(self.on_fleet_event)

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

    def _on_capped(self, agent: str, message: str, cutoff: str) -> None:
        log.info("run cap: %s", message)
        notice = Notice(message, tone="error", agents=(agent,), alert=True)

        async def post() -> None:
            await self._cut(agent, cutoff)
            if self._notices is not None:
                await self._notices.post(notice)  # the board logs the places that failed

        task = asyncio.get_running_loop().create_task(post(), name="run-cap")
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _cut(self, agent: str, cutoff: str) -> None:
        fleet, why = self._fleet, "its run reached its cap"
        try:
            if fleet is not None and cutoff == "freeze":
                await fleet.freeze(agent, reason=why, budget=f"run:{agent}")
            elif fleet is not None and cutoff == "stop":
                await fleet.stop_agent(agent, by=f"its run's cap ({why})", outcome=Outcome.CUT_OFF)
        except AgentNotRunning:
            pass
        except FleetError as exc:
            log.warning("%s: could not %s it at its run's cap: %s", agent, cutoff, exc)

    async def drain(self) -> None:
        """Wait for the capped runs' notices to be posted (at stop)."""
        if self._posting:
            await asyncio.gather(*self._posting, return_exceptions=True)
