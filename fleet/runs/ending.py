"""A run's end: the one watcher per live process, the ends Fleetwarden brings about (an
operator's stop, the watchdog's kill), the ledger matched to what runs after a restart, and
what is recorded and harvested once a run ended.

:class:`RunEnds` keeps, for each agent, the end it is bringing about (:class:`Ending`), so
that a watcher seeing its process end knows whether an operator or the watchdog asked for
it. Once a run ended its token is refused at every door, what it paused and its place are
let go, what it left in its workdir is kept on its branch, its state and its session are
told, its report is read (:class:`~fleet.runs.output.reading.RunReading`) and its end is
heard of. Its launch is :class:`~fleet.runs.starting.RunStarter`'s."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fleet.errors import AgentNotRunning
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.rows import AgentRecord, RunRecord
from fleet.ledger.stores.spend.budgets import BudgetsStore
from fleet.model import AgentState, ExitInfo
from fleet.names import AgentName
from fleet.runs.hands import RunHands
from fleet.runs.layout import append_marker
from fleet.runs.output.reading import RunReading
from fleet.transcript.story import Outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ending:
    """How a run that Fleetwarden ends is to be recorded."""

    state: AgentState
    reason: str
    by_operator: bool
    outcome: Outcome = Outcome.STOPPED


class RunEnds:
    """Watches and ends the runs of the fleet's agents with ``hands``: ``budgets``, whose
    freezes end with a run; ``reading``, which reads a run's report once it ended;
    ``record``, the ledger's record of an agent (:class:`~fleet.errors.UnknownAgent` when
    it has none)."""

    def __init__(
        self,
        hands: RunHands,
        *,
        budgets: BudgetsStore,
        reading: RunReading,
        record: Callable[[AgentName], Awaitable[AgentRecord]],
    ) -> None:
        self._hands = hands
        self._budgets = budgets
        self._reading = reading
        self._record = record
        self._watchers: dict[AgentName, asyncio.Task[None]] = {}
        self._ending: dict[AgentName, Ending] = {}  # agents being stopped, and why

    def watch(self, name: AgentName, run: RunRecord) -> None:
        """Watch ``run``, just started or reattached: its end is recorded once its process
        ends."""
        task = asyncio.create_task(self._watcher(name, run), name=f"watch-{name}")
        self._watchers[name] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._watchers.get(name) is done:
                del self._watchers[name]

        task.add_done_callback(forget)

    async def stop_run(
        self, name: AgentName, *, force: bool, reason: str, ending: Ending | None = None
    ) -> ExitInfo:
        """End the current run. By default as an operator's stop (state ``stopped``, no
        notice); ``ending`` says otherwise (e.g. the watchdog's timeout kill)."""
        ending = ending or Ending(AgentState.STOPPED, reason, by_operator=True)
        run = await self._hands.runs.last_run(name)
        if run is None or run.ended_at is not None:
            record = await self._record(name)
            if record.state.is_live:
                await self._hands.agents.set_state(name, ending.state, reason)
            raise AgentNotRunning(f"{name} is not running")
        self._ending[name] = ending
        # A paused process acts on no SIGTERM until it is continued: a frozen run is killed
        # at once rather than after the whole grace (it was frozen for a reason).
        force = force or any(f.agent == name for f in await self._budgets.freezes())
        try:
            info = await self._hands.backend(run.handle.backend).stop(
                run.handle, grace=self._hands.settings.stop_grace, force=force
            )
            watcher = self._watchers.get(name)
            if watcher is not None:
                await asyncio.shield(watcher)
            else:
                await self._finish(name, run, info, ending=ending)
            return info
        finally:
            self._ending.pop(name, None)

    async def close(self, name: AgentName, run: RunRecord, *, notify: bool = True) -> None:
        """Record the end of a run whose process ended by itself, with the status the
        shim left; operators hear of it when ``notify``."""
        info = await self._hands.backend(run.handle.backend).wait(run.handle)
        await self._finish(name, run, info, ending=None, notify=notify)

    async def reconcile(self) -> None:
        """Match the ledger to what runs: a run it believes open is reattached if its
        process still lives, or closed with the status the shim recorded."""
        open_runs = {run.agent: run for run in await self._hands.runs.open_runs()}
        records = await self._hands.agents.list_agents()
        for record in records:
            run = open_runs.get(record.name)
            if run is not None:
                await self._reconcile_run(record, run)
            elif record.state.is_live:
                await self._hands.agents.set_state(
                    record.name, AgentState.FAILED, "was starting when Fleetwarden stopped"
                )
        # Only the runs going on keep their tokens (accepted from now on); the retired
        # tokens of agents gone (removed from the roster, or forgotten) are forgotten.
        await self._hands.tokens.sweep(known=[r.name for r in records if r.removed_at is None])

    async def stop_watching(self) -> None:
        """Cancel the watchers; the processes they watched keep running."""
        watchers = list(self._watchers.values())
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        self._watchers.clear()

    # -- internals ---------------------------------------------------------------------

    async def _reconcile_run(self, record: AgentRecord, run: RunRecord) -> None:
        backend = self._hands.backend(run.handle.backend)
        if backend.is_alive(run.handle):
            log.info("reattached agent %s (pid %s)", record.name, run.handle.pid)
            if not record.state.is_live:
                await self._hands.agents.set_state(record.name, AgentState.RUNNING, "reattached")
            if self._hands.site.sandboxes is not None:
                await self._hands.site.sandboxes.reattach(record.spec)
            self.watch(record.name, run)
            if self._hands.sessions is not None:
                await self._hands.sessions.reattached(record.spec, run)
            return
        info = await backend.wait(run.handle)
        await self._finish(record.name, run, info, ending=None, notify=False)

    async def _watcher(self, name: AgentName, run: RunRecord) -> None:
        info = await self._hands.backend(run.handle.backend).wait(run.handle)
        await self._finish(name, run, info, ending=self._ending.get(name))

    async def _finish(
        self,
        name: AgentName,
        run: RunRecord,
        info: ExitInfo,
        *,
        ending: Ending | None,
        notify: bool = True,
    ) -> None:
        """Record how a run ended: by itself (exited/failed by its status), or as
        ``ending`` says. Operators hear of it unless they asked for it themselves.
        ``desired`` is left alone: the restart policy decides what follows an end."""
        hands = self._hands
        await hands.runs.end_run(run.id, info)
        await hands.tokens.over(name)  # its token: refused at every door from now on
        await self._budgets.remove_freeze(name)  # what it paused has ended with the run
        await hands.site.release(name, run.host)
        if hands.repos is not None:  # before its state says it ended: verbs wait for this
            try:  # what it left uncommitted, committed and brought to its branch
                await hands.repos.finished(name, run.id)
                await hands.repos.reviews.over(name)
            except Exception:
                log.exception("could not keep what %s's run %s left on its branch", name, run.id)
        await hands.tokens.over(name)  # the one its end was pushed with, on a host, too
        if ending is not None:
            state, reason = ending.state, f"{ending.reason} ({info.reason})"
        else:
            state = AgentState.EXITED if info.exit_code == 0 else AgentState.FAILED
            reason = info.reason
        await hands.agents.set_state(name, state, reason)
        if hands.sessions is not None:
            await hands.sessions.ended(name, run, info, reason)
        append_marker(hands.contexts.log_path(name), f"{name} {info.reason}")
        try:
            await self._reading.report_end(
                name, run, info, hands.contexts.log_path(name),
                outcome=ending.outcome if ending is not None else None,
                ending_reason=ending.reason if ending is not None else None,
            )  # fmt: skip
        except Exception:  # the summary is news; losing it must not lose the run's end
            log.exception("could not read how %s's run %s went", name, run.id)
        by_operator = ending is not None and ending.by_operator
        if notify:  # by_operator too: listeners other than the notices (a freed slot)
            at_once = run.id in self._reading.settling
            await hands.emit(
                FleetEvent(
                    name, EventKind.ENDED, state, reason, by_operator, run.id, at_once=at_once
                )
            )
