"""An agent's runs: launching one, watching it, ending it, recording how it ended.

:class:`RunKeeper` owns the lock per agent, the one watcher task per live process and
the ends Fleetwarden is bringing about, so that a watcher seeing its process end knows
whether an operator or the watchdog asked for it. It also reconciles the ledger with
what actually runs after Fleetwarden restarts. What to run, and when, is decided by its
callers: the supervisor's operations and the watchdog's actions. Reading a run's output
(its first moments, its report once it ended) is :class:`~fleet.runs.output.reading.RunReading`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from fleet.backends.base import Backend, backend_key
from fleet.budgets.runs.arming import arm_or_refuse, task_spec
from fleet.errors import AgentNotRunning, FleetError, LaunchFailed, UnknownAgent
from fleet.events import EventKind, FleetEvent, Listener
from fleet.hosts.schema import LOCAL_HOST
from fleet.ledger.records.rows import AgentOrigin, AgentRecord, RunRecord
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.runs import RunReport, RunsStore, RunStart
from fleet.ledger.stores.spend.budgets import BudgetsStore
from fleet.model import AgentSpec, AgentState, DesiredState, ExitInfo, LaunchPlan
from fleet.names import AgentName, agent_name
from fleet.repos.line.cutting import Asked
from fleet.repos.line.launching import review_spec, run_setup, workdir_of
from fleet.runs.launch.context import RunContexts
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runs.launch.launch_site import LaunchSite
from fleet.runs.launch.preamble import prompted, with_peers_file
from fleet.runs.launch.run_tokens import RunTokens
from fleet.runs.launch.strict import check_strict
from fleet.runs.layout import AgentPaths, append_marker, empty_folders, write_files
from fleet.runs.no_agent import NoSuchAgent
from fleet.runs.output.facts import check_launchable
from fleet.runs.output.reading import Launched, RunOutput, RunReading
from fleet.runs.resuming import resumed_plan
from fleet.runtimes import RuntimeContext
from fleet.sandbox.git.git_probe import GitProbe
from fleet.sessions.hooks import SessionHooks
from fleet.timing.clock import Clock
from fleet.transcript.logtail import size_of
from fleet.transcript.story import Outcome

__all__ = ["Ending", "RunKeeper", "backend_named"]

log = logging.getLogger(__name__)


def backend_named(backends: Mapping[str, Backend], name: str) -> Backend:
    """Backend ``name`` of ``backends``; :class:`FleetError` naming the known ones."""
    try:
        return backends[name]
    except KeyError:
        raise FleetError(f"unknown backend {name!r}; known: {', '.join(backends)}") from None


@dataclass(frozen=True, slots=True)
class Ending:
    """How a run that Fleetwarden ends is to be recorded."""

    state: AgentState
    reason: str
    by_operator: bool
    outcome: Outcome = Outcome.STOPPED


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
        self._runs = runs
        self._budgets = budgets
        self._caps = kit.spend.run_caps
        self._repos = kit.place.repos
        self._publish_tokens = kit.doors.publish_tokens
        self.tokens = RunTokens(kit.doors.heartbeats, kit.doors.publish_tokens, runs)  # one per run
        self._preamble = kit.doors.preamble
        self._runtimes = kit.runtimes
        self._backends = dict(kit.backends)
        self._settings = kit.settings
        self._clock = clock
        self._emit = emit
        self.contexts = RunContexts(kit, clock=clock, backend=self.backend)
        self._roster = roster
        self._site = LaunchSite(agents, self.contexts, self._backends, kit.place.sandboxes, roster)
        self._git = GitProbe()  # reads HEADs in a sandbox of its own, runs nothing of theirs
        self._locks: dict[AgentName, asyncio.Lock] = {}
        self._watchers: dict[AgentName, asyncio.Task[None]] = {}
        self._ending: dict[AgentName, Ending] = {}  # agents being stopped, and why
        self.reading = RunReading(
            agents=agents,
            runs=runs,
            runtimes=kit.runtimes,
            backends=self._backends,
            settings=kit.settings,
            git=self._git,
        )
        self.sessions = sessions  # drives the runs that speak a session

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
        """Start ``spec`` (or a runtime's ``plan`` for it, e.g. a resumed session). A launch
        that cannot work (no such program, no workdir, no credential, a cap that cannot be
        armed) is refused first. ``origin``: a spawn's, saved with the spec
        (:meth:`~fleet.ledger.stores.running.agents.AgentsStore.upsert_agent`); ``continues``: the
        run continues the task of the agent's last run (a watchdog's restart), keeping its cap's
        count;
        ``asked``: what the launch asks of a new line, on a repository; ``resume``: the
        prompt continues the agent's last session where it can (:mod:`fleet.runs.resuming`)."""
        check_strict(spec, self._settings.strict)  # the ledger's settings too
        async with self.tokens.launching(spec.name):  # a launch that fails: its token too
            spec = task_spec(spec, self._clock.now(), continues=continues)
            spec = await self._site.place(spec)
            remote = spec.host != LOCAL_HOST
            if asked is not None and asked.review_of is not None:  # a read-only checkout
                spec = await review_spec(self._repos, spec, asked.review_of)
                return await self._launch(spec, remote, reason, plan, origin, continues)
            if spec.repo is None:
                plan = plan or await resumed_plan(self._runtimes, self.contexts, spec, resume)
                return await self._launch(spec, remote, reason, plan, origin, continues)
            prepared = await workdir_of(self._repos, spec, asked)  # its line's, made if need be
            spec = prepared.spec
            try:
                plan = plan or await resumed_plan(self._runtimes, self.contexts, spec, resume)
                return await self._launch(
                    spec, remote, reason, plan, origin, continues, prepared.setup, prepared.head
                )
            finally:  # the line is the verbs' again (merge, discard) once the run is, or not
                if self._repos is not None:
                    self._repos.launched(spec.name)

    async def _launch(
        self,
        spec: AgentSpec,
        remote: bool,
        reason: str,
        plan: LaunchPlan | None,
        origin: AgentOrigin | None,
        continues: bool,
        setup: tuple[str, ...] = (),
        head: str | None = None,
    ) -> Launched:
        """``head``: the workdir's HEAD when it is known already (a checkout just cut,
        :attr:`fleet.repos.service.Prepared.head`), else read from it."""
        runtime = self._runtimes.get(spec.runtime)
        backend = self.backend(backend_key(spec))
        paths = AgentPaths.of(self._settings.state_dir, spec.name)
        block = await self._preamble(spec) if self._preamble is not None else None
        if plan is None or block is not None:
            ctx = self.context(spec)
            # Its comms block before its own prompt; a plan given (a follow-up in its
            # session) has been told already. The file is written at each launch.
            plan = plan if plan is not None else runtime.plan(prompted(spec, block), ctx)
            plan = with_peers_file(plan, ctx.home, block)
        if self._publish_tokens is not None:  # before the agent can use them
            await self._publish_tokens()
        check_launchable(
            spec,
            plan,
            accounts=self.contexts.chosen(spec),
            environ=self.contexts.environ,
            remote_tools=self.contexts.remote_tools(spec) if remote else None,
            offline=self.contexts.offline,
        )
        if self._caps is not None:  # before its process can ask a model anything
            await arm_or_refuse(self._caps, spec, continues=continues)
        if not remote:  # a remote run's files are written there by its backend
            empty_folders(paths.home, plan.fresh)
            write_files(paths.home, plan.files)
        await self._agents.upsert_agent(spec, DesiredState.RUNNING, origin=origin)
        await self._agents.set_state(spec.name, AgentState.STARTING, reason)
        append_marker(paths.log, f"{spec.name} starting ({spec.runtime})")
        offset = size_of(paths.log)
        git_before = None if remote else head or await self._git.head(plan.cwd)
        try:
            if setup:  # a new checkout's setup command, in the agent's sandbox, first
                confined = await self._site.confine(
                    spec, replace(plan, argv=setup, takes_input=False), paths.home
                )
                await run_setup(
                    spec.name, confined, paths.new_run_dir(self._clock.now()), paths.log
                )
            plan = await self._site.confine(spec, plan, paths.home)
            # The run starts when its process does: a first heartbeat sent before the run is
            # recorded (a fast agent on a busy host) is this run's, never an earlier one's.
            launching = self._clock.now()
            handle = await backend.launch(plan, paths.new_run_dir(launching), paths.log)
        except LaunchFailed as exc:
            await self._agents.set_state(spec.name, AgentState.FAILED, str(exc))
            await self._site.release(spec.name, spec.host)
            if self._caps is not None:
                self._caps.disarm(spec.name)
            raise
        run = await self._runs.start_run(spec.name, handle, launching)
        if self._caps is not None:
            self._caps.bind(spec.name, run.id)
        if spec.repo is not None and self._repos is not None:
            await self._repos.started(spec.name, run.id)
        await self._runs.record_run_start(
            run,
            RunStart(
                reason,
                self.contexts.account_names(spec),
                str(plan.cwd),
                git_before,
                offset,
                spec.runtime,
                spec.model,
            ),
        )
        await self._agents.set_state(spec.name, AgentState.RUNNING, f"pid {handle.pid}")
        self._watch(spec.name, run)
        if plan.session is not None and self.sessions is not None:
            await self.sessions.started(
                spec, run, protocol=plan.session, prompt=plan.prompt, offset=offset
            )
        await self._emit(
            FleetEvent(
                spec.name,
                EventKind.STARTED,
                AgentState.RUNNING,
                reason,
                by_operator=True,
                run_id=run.id,
            )
        )
        return Launched(offset, handle.pid, run.id)

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
        notice); ``ending`` says otherwise (e.g. the watchdog's timeout kill)."""
        ending = ending or Ending(AgentState.STOPPED, reason, by_operator=True)
        run = await self._runs.last_run(name)
        if run is None or run.ended_at is not None:
            record = await self.record(name)
            if record.state.is_live:
                await self._agents.set_state(name, ending.state, reason)
            raise AgentNotRunning(f"{name} is not running")
        self._ending[name] = ending
        # A paused process acts on no SIGTERM until it is continued: a frozen run is killed
        # at once rather than after the whole grace (it was frozen for a reason).
        force = force or any(f.agent == name for f in await self._budgets.freezes())
        try:
            info = await self.backend(run.handle.backend).stop(
                run.handle, grace=self._settings.stop_grace, force=force
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
        info = await self.backend(run.handle.backend).wait(run.handle)
        await self._finish(name, run, info, ending=None, notify=notify)

    async def reconcile(self) -> None:
        """Match the ledger to what runs: a run it believes open is reattached if its
        process still lives, or closed with the status the shim recorded."""
        open_runs = {run.agent: run for run in await self._runs.open_runs()}
        records = await self._agents.list_agents()
        for record in records:
            run = open_runs.get(record.name)
            if run is not None:
                await self._reconcile_run(record, run)
            elif record.state.is_live:
                await self._agents.set_state(
                    record.name, AgentState.FAILED, "was starting when Fleetwarden stopped"
                )
        # Only the runs going on keep their tokens (accepted from now on); the retired
        # tokens of agents gone (removed from the roster, or forgotten) are forgotten.
        await self.tokens.sweep(known=[r.name for r in records if r.removed_at is None])

    async def stop_watching(self) -> None:
        """Cancel the watchers; the processes they watched keep running."""
        watchers = list(self._watchers.values())
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        self._watchers.clear()

    # -- internals ---------------------------------------------------------------------

    async def _reconcile_run(self, record: AgentRecord, run: RunRecord) -> None:
        backend = self.backend(run.handle.backend)
        if backend.is_alive(run.handle):
            log.info("reattached agent %s (pid %s)", record.name, run.handle.pid)
            if not record.state.is_live:
                await self._agents.set_state(record.name, AgentState.RUNNING, "reattached")
            if self._site.sandboxes is not None:
                await self._site.sandboxes.reattach(record.spec)
            self._watch(record.name, run)
            if self.sessions is not None:
                await self.sessions.reattached(record.spec, run)
            return
        info = await backend.wait(run.handle)
        await self._finish(record.name, run, info, ending=None, notify=False)

    def _watch(self, name: AgentName, run: RunRecord) -> None:
        task = asyncio.create_task(self._watcher(name, run), name=f"watch-{name}")
        self._watchers[name] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._watchers.get(name) is done:
                del self._watchers[name]

        task.add_done_callback(forget)

    async def _watcher(self, name: AgentName, run: RunRecord) -> None:
        info = await self.backend(run.handle.backend).wait(run.handle)
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
        await self._runs.end_run(run.id, info)
        await self.tokens.over(name)  # its token: refused at every door from now on
        await self._budgets.remove_freeze(name)  # what it paused has ended with the run
        await self._site.release(name, run.host)
        if self._repos is not None:  # before its state says it ended: verbs wait for this
            try:  # what it left uncommitted, committed and brought to its branch
                await self._repos.finished(name, run.id)
                await self._repos.reviews.over(name)
            except Exception:
                log.exception("could not keep what %s's run %s left on its branch", name, run.id)
        await self.tokens.over(name)  # the one its end was pushed with, on a host, too
        if ending is not None:
            state, reason = ending.state, f"{ending.reason} ({info.reason})"
        else:
            state = AgentState.EXITED if info.exit_code == 0 else AgentState.FAILED
            reason = info.reason
        await self._agents.set_state(name, state, reason)
        if self.sessions is not None:
            await self.sessions.ended(name, run, info, reason)
        append_marker(self.log_path(name), f"{name} {info.reason}")
        try:
            await self.reading.report_end(
                name, run, info, self.log_path(name),
                outcome=ending.outcome if ending is not None else None,
                ending_reason=ending.reason if ending is not None else None,
            )  # fmt: skip
        except Exception:  # the summary is news; losing it must not lose the run's end
            log.exception("could not read how %s's run %s went", name, run.id)
        by_operator = ending is not None and ending.by_operator
        if notify:  # by_operator too: listeners other than the notices (a freed slot)
            at_once = run.id in self.reading.settling
            await self._emit(
                FleetEvent(
                    name, EventKind.ENDED, state, reason, by_operator, run.id, at_once=at_once
                )
            )
