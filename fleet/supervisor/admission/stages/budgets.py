"""The budgets' stage: a launch its budget turns away (:meth:`SpawnBudgets.admit_spawn`;
the roster's own launches are not asked, their cutoffs hold them) moves to the agent's
fallback when it has one and the request names no runtime, else waits until the budget's
queue clears (``queued_until``) when it may wait there, else is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol

from fleet.model import Fallback
from fleet.supervisor.admission.request import RESTARTS, LaunchRequest, Queued, Refused
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.admission.stages.chain import Admitting, Verdict, Wait

_UNASKED = frozenset({"autostart", *RESTARTS})
"""The launches the budgets are not asked of: the roster's own (their cutoffs hold them) and
a restart of an agent, an operator's or the watchdog's (as ever: at most the caps hold it)."""


class SpawnBudgets(Protocol):
    """The budgets as a launch asks them (:class:`fleet.budgets.service.BudgetService`)."""

    async def admit_spawn(self, agent: str, *, urgent: bool) -> tuple[bool, str]: ...

    def queued_until(self, agent: str) -> datetime | None: ...


class Fallbacks(Protocol):
    """Where an agent's next run may start when its budget turns it away."""

    async def fallback_of(self, name: str) -> Fallback | None: ...


class BudgetStage:
    """The budgets, their fallback and their deferral. ``budgets``: ``None`` where the
    fleet has none configured (every launch goes on)."""

    name = "budgets"

    def __init__(
        self, budgets: SpawnBudgets | None, fallbacks: Fallbacks, slots: Slots | None
    ) -> None:
        self.budgets = budgets
        self._fallbacks = fallbacks
        self._slots = slots

    async def admit(self, admitting: Admitting) -> Verdict:
        request, budgets = admitting.request, self.budgets
        if budgets is None or request.origin in _UNASKED:
            return None
        admitted, why = await budgets.admit_spawn(request.agent, urgent=request.urgent)
        if admitted:
            return None
        moved = await self._fallback(request)
        if moved is None:
            return await self._deferred(budgets, request, why, admitting.wait)
        admitting.request = moved
        on = f" on account {moved.account}" if moved.account else ""
        admitting.fallback = f"Started on its fallback, {moved.runtime}{on}: {why}."
        return None

    async def _fallback(self, request: LaunchRequest) -> LaunchRequest | None:
        """``request`` on the agent's fallback — the budget ladder's last step — when it
        has one and the request names no runtime of its own."""
        if request.runtime is not None:
            return None
        fallback = await self._fallbacks.fallback_of(request.agent)
        if fallback is None:
            return None
        return replace(
            request, runtime=fallback.runtime, model=fallback.model, account=fallback.account
        )

    async def _deferred(
        self, budgets: SpawnBudgets, request: LaunchRequest, why: str, wait: Wait | None
    ) -> Verdict:
        """A launch its budget turned away: to wait until the budget's queue clears, when
        it may wait (in the spawn queue, which lists it); else refused, saying it is not
        queued (``why`` has the command that would start it)."""
        until = budgets.queued_until(request.agent)
        if until is None or wait is None:
            return Refused(f"{why} (this launch is not queued)")
        slots = self._slots
        if slots is not None and request.agent not in slots.starting:
            waiting = [e for e in await slots.queue() if e.agent == request.agent]
            if waiting:
                return Queued(waiting[0].reason, waiting[0], already=True)
        return Queued(why, await wait(request, why, until), until=until)
