"""An agent's runs: launching one, watching it, ending it, recording how it ended.

:class:`RunKeeper` owns the lock per agent, so that no two operations on it interleave, and
what it looks up of the agents and their runs. A run's launch is
:class:`~fleet.runs.starting.RunStarter`'s; its watcher, the ends Fleetwarden brings about
(whether an operator or the watchdog asked for one), the reconciling of the ledger with what
actually runs after Fleetwarden restarts, and what is harvested once a run ended are
:class:`~fleet.runs.ending.RunEnds`'; both work with the keeper's
:class:`~fleet.runs.hands.RunHands`. What to run, and when, is decided by its callers: the
supervisor's operations and the watchdog's actions. Reading a run's output (its first
moments, its report once it ended) is :class:`~fleet.runs.output.reading.RunReading`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from fleet.backends.base import Backend
from fleet.errors import UnknownAgent
from fleet.events import Listener
from fleet.ledger.records.rows import AgentOrigin, AgentRecord, RunRecord
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.runs import RunReport, RunsStore
from fleet.ledger.stores.spend.budgets import BudgetsStore
from fleet.model import AgentSpec, ExitInfo, LaunchPlan
from fleet.names import AgentName, agent_name
from fleet.repos.line.cutting import Asked
from fleet.runs.ending import Ending, RunEnds
from fleet.runs.hands import RunHands, backend_named
from fleet.runs.launch.context import RunContexts
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runs.launch.launch_site import LaunchSite
from fleet.runs.launch.run_tokens import RunTokens
from fleet.runs.no_agent import NoSuchAgent
from fleet.runs.output.reading import Launched, RunOutput, RunReading
from fleet.runs.starting import RunStarter
from fleet.runtimes import RuntimeContext
from fleet.sandbox.git.git_probe import GitProbe
from fleet.sessions.hooks import SessionHooks
from fleet.timing.clock import Clock

__all__ = ["RunKeeper"]


class RunKeeper:
    """Launches, watches and ends the runs of the fleet's agents."""

    def __init__(
        self,
        *,
        agents: AgentsStore,
        runs: RunsStore,
        budgets: BudgetsStore,
        clock: Clock,
        kit: LaunchKit,
        emit: Listener,
        roster: Callable[[], Iterable[AgentSpec]] = tuple,
        sessions: SessionHooks | None = None,
    ) -> None:
        """``roster``: the config's agents as they are now (their workdirs are hidden
        from every other agent's sandbox, whether or not they ever ran); ``sessions``: what
        drives the runs that speak a session (made before it)."""
        self._agents = agents
        self._backends = backends = dict(kit.backends)
        self.tokens = RunTokens(kit.doors.heartbeats, kit.doors.publish_tokens, runs)  # one per run
        self.contexts = RunContexts(kit, clock=clock, backend=partial(backend_named, backends))
        self._roster = roster
        site = LaunchSite(agents, self.contexts, backends, kit.place.sandboxes, roster)
        git = GitProbe()  # reads HEADs in a sandbox of its own, runs nothing of theirs
        self._locks: dict[AgentName, asyncio.Lock] = {}
        self.reading = RunReading(
            agents=agents,
            runs=runs,
            runtimes=kit.runtimes,
            backends=backends,
            settings=kit.settings,
            git=git,
        )
        self.sessions = sessions  # drives the runs that speak a session
        hands = RunHands(
            agents=agents,
            runs=runs,
            emit=emit,
            backends=backends,
            contexts=self.contexts,
            site=site,
            tokens=self.tokens,
            settings=kit.settings,
            repos=kit.place.repos,
            sessions=sessions,
        )
        self._ends = RunEnds(hands, budgets=budgets, reading=self.reading, record=self.record)
        self._starter = RunStarter(hands, kit, clock=clock, git=git, watch=self._ends.watch)

    # -- lookups -----------------------------------------------------------------------

    def lock(self, name: AgentName) -> asyncio.Lock:
        """The lock every operation on agent ``name`` holds, so none interleave."""
        return self._locks.setdefault(name, asyncio.Lock())

    def busy(self) -> set[AgentName]:
        """The agents an operation (spawn, restart, stop) is under way on now."""
        return {name for name, lock in self._locks.items() if lock.locked()}

    async def record(self, name: str) -> AgentRecord:
        """The ledger's record of ``name``; :class:`UnknownAgent` if it has none."""
        record = await self._agents.get_agent(agent_name(name))
        if record is None:
            known = {r.name for r in await self._agents.list_agents()}
            known.update(spec.name for spec in self._roster())
            raise UnknownAgent(NoSuchAgent(name, known))
        return record

    def backend(self, name: str) -> Backend:
        return backend_named(self._backends, name)

    def is_alive(self, run: RunRecord) -> bool | None:
        """Whether ``run``'s process still lives; ``None`` when its backend is not one
        of ours, so nobody can tell."""
        backend = self._backends.get(run.handle.backend)
        return backend.is_alive(run.handle) if backend is not None else None

    def log_path(self, name: AgentName) -> Path:
        return self.contexts.log_path(name)

    def host_down(self, host: str) -> str | None:
        """Why ``host`` cannot be reached now; ``None`` for this machine or one that can."""
        return self.contexts.host_down(host)

    def context(self, spec: AgentSpec) -> RuntimeContext:
        """Where and how ``spec`` runs (:meth:`fleet.runs.launch.context.RunContexts.context`)."""
        return self.contexts.context(spec)

    # -- runs --------------------------------------------------------------------------

    async def launch(
        self,
        spec: AgentSpec,
        *,
        reason: str,
        plan: LaunchPlan | None = None,
        origin: AgentOrigin | None = None,
        continues: bool = False,
        asked: Asked | None = None,
        resume: bool = False,
    ) -> Launched:
        """A run of ``spec``: :meth:`fleet.runs.starting.RunStarter.launch`."""
        return await self._starter.launch(
            spec,
            reason=reason,
            plan=plan,
            origin=origin,
            continues=continues,
            asked=asked,
            resume=resume,
        )

    async def output_of(self, run_id: int) -> RunOutput | None:
        """Where run ``run_id``'s output is read from (:class:`RunReading`)."""
        return await self.reading.output_of(run_id)

    async def first_moments(self, name: AgentName, launched: Launched) -> RunReport | None:
        """A new run's report if it ended in its first moments (:class:`RunReading`)."""
        return await self.reading.first_moments(self.log_path(name), launched)

    async def stop_run(
        self, name: AgentName, *, force: bool, reason: str, ending: Ending | None = None
    ) -> ExitInfo:
        """End the current run. By default as an operator's stop (state ``stopped``, no
        notice); ``ending`` says otherwise (e.g. the watchdog's timeout kill)
        (:meth:`fleet.runs.ending.RunEnds.stop_run`)."""
        return await self._ends.stop_run(name, force=force, reason=reason, ending=ending)

    async def close(self, name: AgentName, run: RunRecord, *, notify: bool = True) -> None:
        """Record the end of a run whose process ended by itself, with the status the
        shim left; operators hear of it when ``notify``."""
        await self._ends.close(name, run, notify=notify)

    async def reconcile(self) -> None:
        """Match the ledger to what runs: a run it believes open is reattached if its
        process still lives, or closed with the status the shim recorded."""
        await self._ends.reconcile()

    async def stop_watching(self) -> None:
        """Cancel the watchers; the processes they watched keep running."""
        await self._ends.stop_watching()
