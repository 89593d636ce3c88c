"""A run's launch: a spec placed, its workdir and plan made, checked that it can work,
its cap armed, its process started and recorded, its watch begun.

:class:`RunStarter` is the run keeper's (:class:`~fleet.runs.keeper.RunKeeper`, which holds
the agent's lock around it); a launch that cannot work (no such program, no workdir, no
credential, a cap that cannot be armed) is refused before anything runs, and one whose
process fails to start leaves the agent failed, its place and its cap let go. What follows
its end is :class:`~fleet.runs.ending.RunEnds`'."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from fleet.backends.base import backend_key
from fleet.budgets.runs.arming import arm_or_refuse, task_spec
from fleet.errors import LaunchFailed
from fleet.events import EventKind, FleetEvent
from fleet.hosts.schema import LOCAL_HOST
from fleet.ledger.records.rows import AgentOrigin, RunRecord
from fleet.ledger.stores.running.runs import RunStart
from fleet.model import AgentSpec, AgentState, DesiredState, LaunchPlan
from fleet.names import AgentName
from fleet.repos.line.cutting import Asked
from fleet.repos.line.launching import review_spec, run_setup, workdir_of
from fleet.runs.hands import RunHands
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runs.launch.preamble import prompted, with_peers_file
from fleet.runs.launch.strict import check_strict
from fleet.runs.layout import AgentPaths, append_marker, empty_folders, write_files
from fleet.runs.output.facts import check_launchable
from fleet.runs.output.reading import Launched
from fleet.runs.resuming import resumed_plan
from fleet.sandbox.git.git_probe import GitProbe
from fleet.timing.clock import Clock
from fleet.transcript.logtail import size_of


class RunStarter:
    """Starts the runs of the fleet's agents with ``hands``, on what ``kit`` makes them
    with (their caps armed when it has them); ``clock``: when a run starts; ``git`` reads a
    workdir's HEAD before the run; ``watch`` begins the watch of a run just started."""

    def __init__(
        self,
        hands: RunHands,
        kit: LaunchKit,
        *,
        clock: Clock,
        git: GitProbe,
        watch: Callable[[AgentName, RunRecord], None],
    ) -> None:
        self._hands = hands
        self._clock = clock
        self._caps = kit.spend.run_caps
        self._runtimes = kit.runtimes
        self._preamble = kit.doors.preamble
        self._publish_tokens = kit.doors.publish_tokens
        self._git = git
        self._watch = watch

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
        hands = self._hands
        check_strict(spec, hands.settings.strict)  # the ledger's settings too
        async with hands.tokens.launching(spec.name):  # a launch that fails: its token too
            spec = task_spec(spec, self._clock.now(), continues=continues)
            spec = await hands.site.place(spec)
            remote = spec.host != LOCAL_HOST
            if asked is not None and asked.review_of is not None:  # a read-only checkout
                spec = await review_spec(hands.repos, spec, asked.review_of)
                return await self._launch(spec, remote, reason, plan, origin, continues)
            if spec.repo is None:
                plan = plan or await resumed_plan(self._runtimes, hands.contexts, spec, resume)
                return await self._launch(spec, remote, reason, plan, origin, continues)
            prepared = await workdir_of(hands.repos, spec, asked)  # its line's, made if need be
            spec = prepared.spec
            try:
                plan = plan or await resumed_plan(self._runtimes, hands.contexts, spec, resume)
                return await self._launch(
                    spec, remote, reason, plan, origin, continues, prepared.setup, prepared.head
                )
            finally:  # the line is the verbs' again (merge, discard) once the run is, or not
                if hands.repos is not None:
                    hands.repos.launched(spec.name)

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
        hands = self._hands
        runtime = self._runtimes.get(spec.runtime)
        backend = hands.backend(backend_key(spec))
        paths = AgentPaths.of(hands.settings.state_dir, spec.name)
        block = await self._preamble(spec) if self._preamble is not None else None
        if plan is None or block is not None:
            ctx = hands.contexts.context(spec)
            # Its comms block before its own prompt; a plan given (a follow-up in its
            # session) has been told already. The file is written at each launch.
            plan = plan if plan is not None else runtime.plan(prompted(spec, block), ctx)
            plan = with_peers_file(plan, ctx.home, block)
        if self._publish_tokens is not None:  # before the agent can use them
            await self._publish_tokens()
        check_launchable(
            spec,
            plan,
            accounts=hands.contexts.chosen(spec),
            environ=hands.contexts.environ,
            remote_tools=hands.contexts.remote_tools(spec) if remote else None,
            offline=hands.contexts.offline,
        )
        if self._caps is not None:  # before its process can ask a model anything
            await arm_or_refuse(self._caps, spec, continues=continues)
        if not remote:  # a remote run's files are written there by its backend
            empty_folders(paths.home, plan.fresh)
            write_files(paths.home, plan.files)
        await hands.agents.upsert_agent(spec, DesiredState.RUNNING, origin=origin)
        await hands.agents.set_state(spec.name, AgentState.STARTING, reason)
        append_marker(paths.log, f"{spec.name} starting ({spec.runtime})")
        offset = size_of(paths.log)
        git_before = None if remote else head or await self._git.head(plan.cwd)
        try:
            if setup:  # a new checkout's setup command, in the agent's sandbox, first
                confined = await hands.site.confine(
                    spec, replace(plan, argv=setup, takes_input=False), paths.home
                )
                await run_setup(
                    spec.name, confined, paths.new_run_dir(self._clock.now()), paths.log
                )
            plan = await hands.site.confine(spec, plan, paths.home)
            # The run starts when its process does: a first heartbeat sent before the run is
            # recorded (a fast agent on a busy host) is this run's, never an earlier one's.
            launching = self._clock.now()
            handle = await backend.launch(plan, paths.new_run_dir(launching), paths.log)
        except LaunchFailed as exc:
            await hands.agents.set_state(spec.name, AgentState.FAILED, str(exc))
            await hands.site.release(spec.name, spec.host)
            if self._caps is not None:
                self._caps.disarm(spec.name)
            raise
        run = await hands.runs.start_run(spec.name, handle, launching)
        if self._caps is not None:
            self._caps.bind(spec.name, run.id)
        if spec.repo is not None and hands.repos is not None:
            await hands.repos.started(spec.name, run.id)
        await hands.runs.record_run_start(
            run,
            RunStart(
                reason,
                hands.contexts.account_names(spec),
                str(plan.cwd),
                git_before,
                offset,
                spec.runtime,
                spec.model,
            ),
        )
        await hands.agents.set_state(spec.name, AgentState.RUNNING, f"pid {handle.pid}")
        self._watch(spec.name, run)
        if plan.session is not None and hands.sessions is not None:
            await hands.sessions.started(
                spec, run, protocol=plan.session, prompt=plan.prompt, offset=offset
            )
        await hands.emit(
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
