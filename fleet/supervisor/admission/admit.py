"""The one admission of every launch: a chat ``spawn``, the spawn queue's start of what
waited, the roster's own launches (``autostart``), an operator's schedule, a forge run, a
peer's wake, a hand-off, a review, an operator's restart and the watchdog's all pass
:meth:`Admission.admit`, and nothing else launches an agent.

One :class:`~fleet.supervisor.admission.request.LaunchRequest` goes through an ordered
chain of stages (:mod:`fleet.supervisor.admission.stages`), each answering go on,
``Queued(why)`` or ``Refused(why)``: whether its name is one the fleet knows or a likely
typo of one (:mod:`~fleet.supervisor.admission.stages.naming`), whose the agent is
(:mod:`~fleet.supervisor.admission.stages.ownership`), whether a watchdog restart may go on
with a task another agent handed on (:mod:`~fleet.supervisor.admission.stages.handoff`),
the budgets and their fallback
(:mod:`~fleet.supervisor.admission.stages.budgets`), the quote and its holds
(:mod:`~fleet.supervisor.admission.stages.quote`), the concurrency caps
(:mod:`~fleet.supervisor.admission.stages.caps`) — then the launch itself
(:meth:`fleet.supervisor.fleet.Fleet.spawn`, the request whole), and its quote kept on the
run it started. A launch done for a task is asked first whether the task is still open,
and the task is told how its launch went (the register's binding).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from fleet.budgets.quoting.holds import Taken
from fleet.ledger.records.quotes import Quote
from fleet.model import AgentSpec, Fallback
from fleet.supervisor.admission.request import (
    RESTARTS,
    Admitted,
    LaunchRequest,
    Refused,
    Started,
)
from fleet.supervisor.admission.stages.budgets import SpawnBudgets
from fleet.supervisor.admission.stages.caps import CapStage
from fleet.supervisor.admission.stages.chain import Admitting, MissingStage, Stage, Wait, chained
from fleet.supervisor.admission.stages.naming import NamingStage
from fleet.supervisor.admission.stages.ownership import OwnershipStage
from fleet.supervisor.admission.stages.quote import QuoteStage
from fleet.supervisor.status import SpawnOutcome

__all__ = ["Admission", "Launches", "SpawnBudgets", "TaskBinding", "Wait"]


class TaskBinding(Protocol):
    """The register's side of a launch done for a task (:class:`fleet.tasks.runs.TaskRuns`):
    asked whether the task may still be launched for, holding the agent's launches one at a
    time while it says which task the agent's next run is for — so the run is bound to its
    task as it starts — and told how the admission took the launch; and, at each sweep of
    the spawn queue, asked to settle the tasks held ``queued`` whose place there is gone."""

    async def closed(self, task: int) -> str | None: ...

    def launching(self, agent: str, task: int | None) -> AbstractAsyncContextManager[None]: ...

    async def told(self, task: int, agent: str, admitted: Admitted) -> None: ...

    async def settle_queued(self) -> int: ...


class Launches(Protocol):
    """The supervisor as the admission launches through it."""

    async def fallback_of(self, name: str) -> Fallback | None: ...

    async def spec(self, name: str) -> AgentSpec: ...

    async def spawn(self, request: LaunchRequest) -> SpawnOutcome: ...


class Admission:
    """The stages, then the launch."""

    def __init__(
        self, *, fleet: Launches, stages: Sequence[Stage], tasks: TaskBinding | None = None
    ) -> None:
        """``fleet``: the launcher it launches through (made before it); ``stages``: its
        chain, each of :data:`~fleet.supervisor.admission.stages.chain.ORDER` once and in
        its order — :class:`MissingStage` naming the one missing, so an admission is whole
        or it is not made (the app refuses to start). ``tasks``: the register, told of each
        launch done for a task (``None``: no register)."""
        self._fleet = fleet
        self.stages = chained(stages)
        self._quotes = _stage(self.stages, QuoteStage)
        self._caps = _stage(self.stages, CapStage)
        self._owner = _stage(self.stages, OwnershipStage)
        self._naming = _stage(self.stages, NamingStage)
        self.slots = self._caps.slots
        self.quoting = self._quotes.quoting
        self.holds = self._quotes.holds
        self.tasks = tasks

    async def admit(
        self, request: LaunchRequest, wait: Wait | None = None, turn: int | None = None
    ) -> Admitted:
        """Launch ``request`` now, or say why it waits or is refused. ``wait``: where it
        waits when it may (the spawn queue); without it, a held launch is the caller's to
        keep (a forge run's next run on its line is refused) and a deferred one is refused.
        ``turn``: the spawn queue's entry this launch starts (its own start is not held by
        its own mark as starting).
        A launch done for a task moves the task as it went (the register's binding)."""
        tasks, task = self.tasks, request.task
        if tasks is not None and task is not None:
            closed = await tasks.closed(task)
            if closed is not None:  # cancelled or done meanwhile (a queued start of it)
                return Refused(closed)
        admitted = await self._admit(Admitting(request, wait, turn=turn))
        if tasks is not None and task is not None:
            await tasks.told(task, request.agent, admitted)
        return admitted

    async def _admit(self, admitting: Admitting) -> Admitted:
        try:
            for stage in self.stages:
                verdict = await stage.admit(admitting)
                if verdict is not None:
                    self._let_go(admitting.taken)
                    return verdict
            try:
                outcome = await self._launch(admitting.request)
            finally:
                self._caps.release(admitting)
            quote = await self._kept(admitting.quote, admitting.taken, outcome)
        except BaseException:
            self._let_go(admitting.taken)
            raise
        return Started(outcome, admitting.fallback, quote)

    async def meant(self, request: LaunchRequest) -> str | None:
        """The known agent ``request``'s typed name is likely a slip of (the naming stage's
        rule), or ``None``."""
        return await self._naming.meant(request)

    async def stranger(self, request: LaunchRequest) -> str | None:
        """Why ``request`` names an agent likely meant to be another (the naming stage's
        rule, asked before a spawn opens its task), or ``None``."""
        return await self._naming.stranger(request)

    async def no_room(self, request: LaunchRequest, turn: int | None = None) -> str | None:
        """Why the budgets' holds would keep ``request`` waiting now (``None``: they would
        not) — or why whose the agent is would (a forge run's agent busy) —, taking nothing:
        the spawn queue tries a waiting launch (entry ``turn``) only once it fits."""
        return await self._owner.held(request, turn) or await self._quotes.no_room(request)

    async def _kept(
        self, quote: Quote | None, taken: Taken | None, outcome: SpawnOutcome
    ) -> Quote | None:
        """``quote``, kept on the run just started, which its hold is bound to (none when
        the agent already ran: its hold let go)."""
        if quote is None or self.quoting is None or not outcome.started:
            self._let_go(taken)
            return None
        run_id = await self.quoting.keep(quote)
        if taken is not None and self.holds is not None:
            if run_id is None or outcome.ended is not None:  # it ended in its first moments
                self.holds.let_go(taken)
            else:
                self.holds.bind(taken, run_id)
        return quote

    def _let_go(self, taken: Taken | None) -> None:
        if taken is not None and self.holds is not None:
            self.holds.let_go(taken)

    async def _launch(self, request: LaunchRequest) -> SpawnOutcome:
        tasks = self.tasks
        if tasks is None or request.origin in RESTARTS:  # a restart goes on with its task
            return await self._fleet.spawn(request)
        async with tasks.launching(request.agent, request.task):
            return await self._fleet.spawn(request)


_S = TypeVar("_S", QuoteStage, CapStage, OwnershipStage, NamingStage)


def _stage(stages: Sequence[Stage], kind: type[_S]) -> _S:
    """The stage of ``stages`` that is a ``kind``: the admission reads its quote's holds and
    its caps' slots there (:class:`MissingStage` without one)."""
    for stage in stages:
        if isinstance(stage, kind):
            return stage
    raise MissingStage(f"the admission has no {kind.name} stage of its own kind ({kind.__name__})")
