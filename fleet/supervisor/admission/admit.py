"""The one admission of every launch: a chat ``spawn``, the spawn queue's start of what
waited, the roster's own launches (``autostart``), an operator's schedule and a forge run
all pass :meth:`Admission.admit`, and nothing else launches an agent.

In order: the budgets (:meth:`fleet.budgets.service.BudgetService.admit_spawn`; the
roster's own launches are not asked, their cutoffs hold them) — a refusal moves the launch
to the agent's fallback when it has one and the request names no runtime
(:meth:`fleet.supervisor.fleet.Fleet.fallback_of`), else defers it to when the budget's
queue clears (``budgets.queued_until``) if the request can wait there, else refuses it;
then the launch's quote, on the runtime and model it will really run
(:mod:`fleet.supervisor.admission.quoted`), refused when it is over the launch's limit, and
its hold taken against every budget over it (:mod:`fleet.budgets.quoting.holds`; the
roster's own launches take theirs unchecked) — a launch it does not fit waits in the spawn
queue for a run to end;
then every concurrency cap (:class:`~fleet.supervisor.admission.slots.Slots`), a launch
they hold waiting in the spawn queue (:mod:`fleet.supervisor.admission.queue`); then the launch
itself (:meth:`fleet.supervisor.fleet.Fleet.spawn`), its line asked for as the request
says, and its quote kept on the run it started.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from fleet.budgets.quoting.holds import Holds, Taken
from fleet.budgets.quoting.service import Quoting
from fleet.ledger import QueuedSpawn
from fleet.ledger.records.quotes import Quote
from fleet.model import AgentSpec, Fallback
from fleet.supervisor.admission.quoted import quoted
from fleet.supervisor.admission.request import (
    Admitted,
    LaunchRequest,
    Queued,
    Refused,
    Started,
)
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.status import SpawnOutcome

Wait = Callable[[LaunchRequest, str, datetime | None], Awaitable[QueuedSpawn]]
"""Write a launch to the spawn queue: the request, why it waits, not before when."""


class SpawnBudgets(Protocol):
    """The budgets as a launch asks them (:class:`fleet.budgets.service.BudgetService`)."""

    async def admit_spawn(self, agent: str, *, urgent: bool) -> tuple[bool, str]: ...

    def queued_until(self, agent: str) -> datetime | None: ...


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
    """Budgets, fallback, deferral, caps and queue, then the launch."""

    def __init__(
        self,
        *,
        fleet: Launches,
        slots: Slots | None,
        budgets: SpawnBudgets | None,
        quoting: Quoting | None = None,
        holds: Holds | None = None,
        tasks: TaskBinding | None = None,
    ) -> None:
        """``quoting``: each launch's quote, made and kept on its run (``None``: none);
        ``holds``: what live runs' quotes hold against the budgets (``None``: nothing is
        held); ``tasks``: the register, told of each launch done for a task (``None``: no
        register)."""
        self._fleet = fleet
        self.slots = slots
        self._budgets = budgets
        self.quoting = quoting
        self.holds = holds
        self.tasks = tasks

    async def admit(self, request: LaunchRequest, wait: Wait | None = None) -> Admitted:
        """Launch ``request`` now, or say why it waits or is refused. ``wait``: where it
        waits when it may (the spawn queue); without it, a held launch is the caller's to
        keep (a forge run's next run on its line is refused) and a deferred one is refused.
        A launch done for a task moves the task as it went (the register's binding)."""
        tasks, task = self.tasks, request.task
        if tasks is not None and task is not None:
            closed = await tasks.closed(task)
            if closed is not None:  # cancelled or done meanwhile (a queued start of it)
                return Refused(closed)
        admitted = await self._admit(request, wait)
        if tasks is not None and task is not None:
            await tasks.told(task, request.agent, admitted)
        return admitted

    async def _admit(self, request: LaunchRequest, wait: Wait | None) -> Admitted:
        fallback = ""
        if self._budgets is not None and request.origin != "autostart":
            admitted, why = await self._budgets.admit_spawn(request.agent, urgent=request.urgent)
            if not admitted:
                moved = await self._fallback(request)
                if moved is None:
                    return await self._deferred(request, why, wait)
                request = moved
                on = f" on account {moved.account}" if moved.account else ""
                fallback = f"Started on its fallback, {moved.runtime}{on}: {why}."
        quote, taken = None, None
        if self.quoting is not None:
            quote, over = await quoted(request, self._fleet, self.quoting)
            if over is not None:
                return Refused(over, quote)
            if self.holds is not None:
                # Not held back: the roster's own launches, and a launch of a running agent
                # (it only reports the run).
                check = request.origin != "autostart"
                check = check and not await self.quoting.running(request.agent)
                # Checked and taken at once: nothing awaited between.
                taken, no_room = self.holds.admit(request.agent, quote, check=check)
                if no_room is not None:
                    return await self._held(request, no_room, wait)
        try:
            return await self._started(request, fallback, quote, taken, wait)
        except BaseException:
            self._let_go(taken)
            raise

    async def no_room(self, request: LaunchRequest) -> str | None:
        """Why the budgets' holds would keep ``request`` waiting now (``None``: they would
        not), taking nothing: the spawn queue tries a waiting launch only once it fits."""
        if self.quoting is None or self.holds is None or request.origin == "autostart":
            return None
        if await self.quoting.running(request.agent):
            return None
        quote, over = await quoted(request, self._fleet, self.quoting)
        return None if over is not None else self.holds.no_room(request.agent, quote)

    async def _started(
        self,
        request: LaunchRequest,
        fallback: str,
        quote: Quote | None,
        taken: Taken | None,
        wait: Wait | None,
    ) -> Admitted:
        """``request`` past the budgets and its quote: through the caps, then launched."""
        slots = self.slots
        if slots is not None:
            enqueue = None if wait is None else _enqueue(wait, request)
            held = await slots.take(
                request.agent,
                request.runtime,
                request.account,
                enqueue,
                forge=request.origin == "forge",
            )
            if held is not None:
                self._let_go(taken)
                return Queued(held.why, held.entry, already=held.already)
        try:
            outcome = await self._launch(request)
        finally:
            if slots is not None:
                slots.release(request.agent)
        return Started(outcome, fallback, await self._kept(quote, taken, outcome))

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

    async def _held(self, request: LaunchRequest, why: str, wait: Wait | None) -> Admitted:
        """A launch the budgets' holds leave no room for: it waits in the spawn queue for a
        run to end, when it may wait (a queued start goes back in its place); else refused."""
        if wait is None:
            return Refused(why)
        slots = self.slots
        if slots is not None and request.agent not in slots.starting:
            forge = request.origin == "forge"
            waiting = [
                e
                for e in await slots.queue()
                if e.agent == request.agent and (e.origin == "forge") == forge
            ]
            if waiting:
                return Queued(waiting[0].reason, waiting[0], already=True, held=True)
        return Queued(why, await wait(request, why, None), held=True)

    async def _launch(self, request: LaunchRequest) -> SpawnOutcome:
        tasks = self.tasks
        if tasks is None:
            return await self._spawn(request)
        async with tasks.launching(request.agent, request.task):
            return await self._spawn(request)

    async def _spawn(self, request: LaunchRequest) -> SpawnOutcome:
        return await self._fleet.spawn(request)

    async def _fallback(self, request: LaunchRequest) -> LaunchRequest | None:
        """``request`` on the agent's fallback — the budget ladder's last step — when it
        has one and the request names no runtime of its own."""
        if request.runtime is not None:
            return None
        fallback = await self._fleet.fallback_of(request.agent)
        if fallback is None:
            return None
        return replace(
            request, runtime=fallback.runtime, model=fallback.model, account=fallback.account
        )

    async def _deferred(self, request: LaunchRequest, why: str, wait: Wait | None) -> Admitted:
        """A launch its budget turned away: to wait until the budget's queue clears, when
        it may wait (in the spawn queue, which lists it); else refused, saying it is not
        queued (``why`` has the command that would start it)."""
        assert self._budgets is not None
        until = self._budgets.queued_until(request.agent)
        if until is None or wait is None:
            return Refused(f"{why} (this launch is not queued)")
        slots = self.slots
        if slots is not None and request.agent not in slots.starting:
            waiting = [e for e in await slots.queue() if e.agent == request.agent]
            if waiting:
                return Queued(waiting[0].reason, waiting[0], already=True)
        return Queued(why, await wait(request, why, until), until=until)


def _enqueue(wait: Wait, request: LaunchRequest) -> Callable[[str], Awaitable[QueuedSpawn]]:
    async def enqueue(why: str) -> QueuedSpawn:
        return await wait(request, why, None)

    return enqueue
