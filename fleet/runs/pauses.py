"""Pausing an agent's run and continuing it (:mod:`fleet.backends.freezer`): the supervisor's
:meth:`~fleet.supervisor.fleet.Fleet.freeze`, :meth:`~fleet.supervisor.fleet.Fleet.thaw` and
:meth:`~fleet.supervisor.fleet.Fleet.frozen` are these, under the agent's lock. A pause is a
fleet event (:attr:`~fleet.events.EventKind.FROZEN`), for whoever waits on the agent's turn,
and so is the thaw of a live run (:attr:`~fleet.events.EventKind.THAWED`), for whoever shows
its state."""

from __future__ import annotations

from fleet.events import EventKind, FleetEvent, Listener
from fleet.ledger import Freeze
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.spend.budgets import BudgetsStore
from fleet.runs.keeper import RunKeeper


class Pauses:
    """Freezes and thaws of the fleet's runs."""

    def __init__(
        self, runs: RunKeeper, records: RunsStore, budgets: BudgetsStore, emit: Listener
    ) -> None:
        self._runs = runs
        self._records = records
        self._budgets = budgets
        self._emit = emit

    async def freeze(self, name: str, *, reason: str, budget: str, by: str | None) -> bool:
        """Pause all of ``name``'s run, for ``budget``'s cutoff or by ``by``; whether it ran."""
        record = await self._runs.record(name)
        async with self._runs.lock(record.name):
            run = await self._records.last_run(record.name)
            if run is None or run.ended_at is not None or self._runs.is_alive(run) is False:
                return False
            await self._budgets.add_freeze(record.name, budget, reason, by=by)
            await self._runs.backend(run.handle.backend).freeze(run.handle)
        by_person = by is not None
        paused = FleetEvent(record.name, EventKind.FROZEN, record.state, reason, by_person, run.id)
        await self._emit(paused)  # told once the lock is let go: a listener may act on it
        return True

    async def thaw(self, name: str) -> bool:
        """Continue ``name``'s processes if a freeze paused them; whether it had."""
        record = await self._runs.record(name)
        async with self._runs.lock(record.name):
            if not await self._budgets.remove_freeze(record.name):
                return False
            run = await self._records.last_run(record.name)
            live = run is not None and run.ended_at is None
            if run is not None and live:
                await self._runs.backend(run.handle.backend).thaw(run.handle)
        if run is not None and live:
            going = FleetEvent(record.name, EventKind.THAWED, record.state, "", False, run.id)
            await self._emit(going)  # told once the lock is let go, as a pause is
        return True

    async def frozen(self) -> list[Freeze]:
        """The agents a cutoff or a person has paused."""
        return await self._budgets.freezes()
