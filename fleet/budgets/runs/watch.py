"""Keeping :class:`~fleet.budgets.runs.caps.RunCaps` in step with the fleet: each run is
armed with its agent's cap (``AgentSpec.run_budget``, as it is launched) in the launch
itself, before its process starts (:class:`~fleet.budgets.runs.arming.CapArming`), and disarmed
when it ends; a run the watchdog restarts continues its task's count, from memory or, when
Fleetwarden restarted in between, from the ledger's usage since the task began. When
Fleetwarden starts, the runs still going are armed again — before the proxy serves a
request — with what their tasks spent so far. A run reaching its cap is posted once — an
alert in the agent's threads — as budgets' limits are, and its cutoff carried out:
``freeze`` pauses the run (:meth:`~fleet.supervisor.fleet.Fleet.freeze`, lifted by ``resume
NAME`` or the run's end), ``stop`` stops it, recorded as cut off; ``ask`` pauses it and has
its operators asked (:class:`CapAsker`: the ask is the message in its thread, in place of
the notice), who raise its cap or stop it. The watch is made before the fleet (the fleet
launches with it); the cutoffs are carried out by :class:`CapCutoffs`, made over the
fleet, which listens to the watch (:meth:`RunCapWatch.listen`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from fleet.budgets.runs.caps import RunCaps
from fleet.errors import AgentNotRunning, FleetError
from fleet.events import EventKind, FleetEvent
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.model import AgentSpec, ExitInfo, RunBudget
from fleet.names import AgentName
from fleet.notices import Notice, NoticeBoard
from fleet.timing.clock import Clock
from fleet.transcript.story import Outcome

log = logging.getLogger(__name__)


class CutoffFleet(Protocol):
    """What a run cap's watch needs of the fleet
    (:class:`~fleet.supervisor.fleet.Fleet`): to pause or stop a run at its cap."""

    async def freeze(
        self, name: str, *, reason: str, budget: str = "", by: str | None = None
    ) -> bool: ...

    async def stop_agent(
        self,
        name: str,
        *,
        force: bool = False,
        by: str = "operator",
        outcome: Outcome = Outcome.STOPPED,
    ) -> ExitInfo: ...


ASKING = "paused at its cap, asking"
"""Why a run with ``cutoff: ask`` is frozen (``ps`` shows ``frozen: …``)."""
UNANSWERED = "paused at its cap, nobody answered (`raise NAME` or `resume NAME`)"
"""Why it stays frozen once nobody answered (its fallback ``freeze``)."""


class CapAsker(Protocol):
    """Who asks a run's operators at its cap (:class:`~fleet.approvals.spend.SpendAsks`)."""

    async def ask_at_cap(self, agent: str, cap: RunBudget, spent: tuple[float, float]) -> bool:
        """Ask, once per task and cap, to raise ``agent``'s ``cap`` (its run has ``spent``
        tokens and dollars) or stop it; whether it was asked (or had been)."""
        ...


class Capped(Protocol):
    """Told each run that reached its cap (:meth:`RunCapWatch.listen`)."""

    async def capped(self, agent: str, cutoff: str) -> bool:
        """Carry out ``cutoff`` on ``agent``'s run; whether its operators were asked (the
        ask is then the message in its thread, in place of the notice)."""
        ...


class CapCutoffs:
    """A capped run's cutoff carried out on ``fleet``; for ``ask`` its operators asked
    through ``asker`` (``None``: nobody asks, the notice says it)."""

    def __init__(self, fleet: CutoffFleet, caps: RunCaps, asker: CapAsker | None = None) -> None:
        self._fleet = fleet
        self._caps = caps
        self._asker = asker

    async def capped(self, agent: str, cutoff: str) -> bool:
        await self._cut(agent, cutoff)
        return cutoff == "ask" and await self._ask(agent)

    async def _cut(self, agent: str, cutoff: str) -> None:
        fleet, why = self._fleet, "its run reached its cap"
        try:
            if cutoff == "freeze":
                await fleet.freeze(agent, reason=why, budget=f"run:{agent}")
            elif cutoff == "ask":
                await fleet.freeze(agent, reason=ASKING, budget=f"run:{agent}")
            elif cutoff == "stop":
                await fleet.stop_agent(agent, by=f"its run's cap ({why})", outcome=Outcome.CUT_OFF)
        except AgentNotRunning:
            pass
        except FleetError as exc:
            log.warning("%s: could not %s it at its run's cap: %s", agent, cutoff, exc)

    async def _ask(self, agent: str) -> bool:
        capped = self._caps.cap_of(agent)
        if self._asker is None or capped is None:
            return False
        cap, tokens, usd = capped
        try:
            return await self._asker.ask_at_cap(agent, cap, (tokens, usd))
        except FleetError as exc:
            log.warning("%s: could not ask its operators at its run's cap: %s", agent, exc)
            return False


class RunCapWatch:
    """Arms ``caps`` in each launch and from the ledger, and posts capped runs; what
    listens to it (:meth:`listen`: the fleet's :class:`CapCutoffs`) carries out their
    cutoffs. The fleet's events reach :meth:`on_fleet_event` once it subscribes it."""

    def __init__(
        self,
        caps: RunCaps,
        agents: AgentsStore,
        runs: RunsStore,
        notices: NoticeBoard | None,
        clock: Clock,
    ) -> None:
        self.caps = caps
        self._agents = agents
        self._runs = runs
        self._notices = notices
        self._clock = clock
        self._posting: set[asyncio.Task[None]] = set()
        self._listeners: list[Capped] = []
        caps.on_capped = self._on_capped

    def listen(self, listener: Capped) -> None:
        """Tell ``listener`` each run that reaches its cap from now on (before it is posted:
        a run it asked about is not)."""
        self._listeners.append(listener)

    async def restore(self) -> None:
        """Arm every run the ledger believes open, with what its task has spent since it
        began (call before the proxy serves: runs found ended then are disarmed by their
        next launch). A ledger that cannot say raises: Fleetwarden does not start with
        its runs uncapped."""
        for run in await self._runs.open_runs():
            record = await self._agents.get_agent(run.agent)
            if record is None or record.spec.run_budget is None:
                continue
            cap = record.spec.run_budget
            since = cap.since or run.started_at
            spent = await self._runs.spent_since(run.agent, since)
            self.caps.arm(run.agent, run.id, cap, since, spent)

    async def arm(self, spec: AgentSpec, *, continues: bool) -> None:
        """Arm ``spec``'s cap for the run about to be launched (see
        :class:`~fleet.budgets.runs.arming.CapArming`)."""
        cap = spec.run_budget
        since = cap.since if cap is not None and cap.since is not None else self._clock.now()
        spent = (0.0, 0.0)
        if cap is not None and continues and self.caps.task_of(spec.name, since) is None:
            spent = await self._runs.spent_since(spec.name, since)  # counted before a restart
        self.caps.arm(spec.name, None, cap, since, spent)

    def bind(self, agent: AgentName, run_id: int) -> None:
        self.caps.bind(agent, run_id)

    def disarm(self, agent: AgentName) -> None:
        self.caps.end(agent, None)

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A run ended: its cap is disarmed (kept for a restart that continues its task)."""
        if event.run_id is not None and event.kind is EventKind.ENDED:
            self.caps.end(event.agent, event.run_id)

    def _on_capped(self, agent: str, message: str, cutoff: str) -> None:
        log.info("run cap: %s", message)
        notice = Notice(message, tone="error", agents=(agent,), alert=True)

        async def post() -> None:
            asked = False
            for listener in self._listeners:
                asked = await listener.capped(agent, cutoff) or asked
            if asked:
                return  # the ask is the message in its thread
            if self._notices is not None:
                await self._notices.post(notice)  # the board logs the places that failed

        task = asyncio.get_running_loop().create_task(post(), name="run-cap")
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def drain(self) -> None:
        """Wait for the capped runs' notices to be posted (at stop)."""
        if self._posting:
            await asyncio.gather(*self._posting, return_exceptions=True)
