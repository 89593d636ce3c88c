"""Carrying out a budget's cutoff when it runs out, with no agent in the loop.

:class:`CutoffKeeper` is the :class:`~fleet.budgets.model.Cutoffs` the budget service calls
for every step change, whether a pacing tick or a request found it:

* into ``refuse`` with ``cutoff: freeze`` → each agent the budget governs that runs is
  paused (SIGSTOP to all its processes, :mod:`fleet.backends.freezer`) and recorded as frozen;
* into ``refuse`` with ``cutoff: stop`` → each is stopped gracefully, recorded as stopped
  by the budget's cutoff;
* into ``refuse`` with ``cutoff: ask`` → each is paused, and the operators are asked once
  per window to raise the limit or stop them (:class:`LimitAsker`);
* out of ``refuse`` (the window reset, the limit raised) → the agents it froze continue.

``cutoff: refuse`` does nothing here: the proxy refuses the model requests. The change is
posted once by the budget service (its message says what the cutoff does); this module
only logs what it could not do.
"""

from __future__ import annotations

import logging
from typing import Protocol

from fleet.budgets.model import Transition
from fleet.errors import AgentNotRunning, FleetError
from fleet.ledger.records.budgets import Cutoff, Step
from fleet.supervisor.interfaces import FleetBrakes
from fleet.transcript.story import Outcome

log = logging.getLogger(__name__)


class LimitAsker(Protocol):
    """Who asks the operators at a budget's limit (:class:`~fleet.approvals.spend.SpendAsks`)."""

    async def ask_at_limit(self, key: str, agents: tuple[str, ...]) -> bool: ...


class CutoffKeeper:
    def __init__(self, fleet: FleetBrakes, asker: LimitAsker | None = None) -> None:
        """``asker``: who asks at the limit of a budget with ``cutoff: ask`` (``None``: its
        agents are frozen, and nobody is asked)."""
        self._fleet = fleet
        self._asker = asker

    async def apply(self, transition: Transition, cutoff: Cutoff) -> None:
        key = transition.budget
        if transition.after is Step.REFUSE and transition.before is not Step.REFUSE:
            for agent in transition.agents:
                await self._cut(agent, key, cutoff)
            if cutoff is Cutoff.ASK and self._asker is not None:
                try:
                    await self._asker.ask_at_limit(key, transition.agents)
                except FleetError as exc:
                    log.warning("%s: could not ask its operators at its limit: %s", key, exc)
        elif transition.before is Step.REFUSE:
            await self.release(key)

    async def release(self, budget: str) -> list[str]:
        """Continue every agent ``budget`` froze; their names."""
        thawed = []
        for freeze in await self._fleet.frozen():
            if freeze.budget == budget and await self._fleet.thaw(freeze.agent):
                thawed.append(freeze.agent)
        if thawed:
            log.info("%s: continued %s", budget, ", ".join(thawed))
        return thawed

    async def _cut(self, agent: str, budget: str, cutoff: Cutoff) -> None:
        why = f"{budget} reached its limit"
        try:
            if cutoff in (Cutoff.FREEZE, Cutoff.ASK):
                reason = f"paused at {budget}'s limit, asking" if cutoff is Cutoff.ASK else why
                if await self._fleet.freeze(agent, budget=budget, reason=reason):
                    log.info("%s: froze %s", budget, agent)
            elif cutoff is Cutoff.STOP:
                await self._fleet.stop_agent(
                    agent, by=f"the cutoff of {budget} ({why})", outcome=Outcome.CUT_OFF
                )
                log.info("%s: stopped %s", budget, agent)
        except AgentNotRunning:
            pass
        except FleetError as exc:
            log.warning("%s: could not %s %s: %s", budget, cutoff.value, agent, exc)
