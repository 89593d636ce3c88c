"""The commands that change the work register's tasks: ``task new`` (a task with its
projection), ``task start`` (its agent's run through the same admission, queue and answer as
``spawn``, or held until what it waits for is done — then started as the request the register
builds for its asker, :meth:`TaskCommands.held`), ``task done`` and ``task cancel``. A typed
start and a held one launch the same request (:func:`fleet.tasks.asked.task_request`)."""

from __future__ import annotations

from dataclasses import replace

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.spawn.repository import repo_choice
from bot.commands.handlers.work.refs import agent_of, mission_of, task_of, tasks_after
from bot.commands.handlers.work.specs import TASK, TASK_CANCEL, TASK_DONE, TASK_NEW, TASK_START
from bot.commands.routing.request import Reply, Request, SpawnGate
from bot.render.work import tasks as render
from fleet.errors import FleetError
from fleet.ledger.records.tasks import NewTask, TaskRecord, TaskState
from fleet.repos.desk import RepoDesk
from fleet.supervisor.admission.request import LaunchRequest, Origin
from fleet.supervisor.interfaces import FleetView
from fleet.tasks.asked import Asker, HeldStart, task_request
from fleet.tasks.register import STARTABLE, Register, Waiting, source_of


class TaskCommands(Family):
    """``task new``, ``task start``, ``task done`` and ``task cancel`` over the register;
    a start is built, admitted and answered by ``spawn``'s own family."""

    def __init__(
        self,
        *,
        register: Register,
        launches: Handlers,
        fleet: FleetView,
        gate: SpawnGate | None = None,
        repos: RepoDesk | None = None,
    ) -> None:
        """``launches``: ``spawn``'s handlers, which build a task's launch from its prompt
        and repository and answer it; ``gate``: the spawn queue a launch waits in;
        ``repos``: the repositories a task may be on (``None``: none configured)."""
        self._register = register
        self._launches = launches
        self._fleet = fleet
        self._gate = gate
        self._repos = repos

    @command(TASK_NEW, under=TASK)
    async def new(self, req: Request) -> Reply:
        typed = req.command
        title = req.arg("TITLE")
        agent = typed.str_flag("agent")
        agent = None if agent is None else agent_of(agent)
        if agent is not None and (guess := await self._launches.slip(agent)) is not None:
            raise CommandError(
                f"no agent is called {agent!r} — did you mean {guess!r}? No task was made: "
                f"`task new {_quoted(title)} --agent {guess}` ({_new_one(agent)})"
            )
        repo = typed.str_flag("repo")
        if repo is not None:  # a repository of the config's, as `spawn --repo` checks it
            repo_choice(self._repos, {"repo": repo}, workdir=None, own=None)
        mission_ref = typed.str_flag("mission")
        register = self._register
        mission = None if mission_ref is None else await mission_of(register, mission_ref)
        after_text = typed.str_flag("after")
        after = [] if after_text is None else await tasks_after(register, after_text)
        kind, ref = source_of(req.message.event_id)
        new = NewTask(
            title=title,
            source=kind,
            source_ref=ref,
            asked_by=req.who,
            body=typed.str_flag("body") or "",
            mission=None if mission is None else mission.id,
            agent=agent,
            runtime=await self._runtime(agent),
            repo=repo,
        )
        task = await register.new(new, after)
        return Reply(render.made(task), detail=f"task #{task.id}")

    async def _runtime(self, agent: str | None) -> str | None:
        """``agent``'s runtime, when it is known (its kind of task)."""
        if agent is None:
            return None
        try:
            return (await self._fleet.spec(agent)).runtime
        except FleetError:  # not known yet: an agent the start makes
            return None

    @command(TASK_START, under=TASK)
    async def start(self, req: Request) -> Reply:
        task = await task_of(self._register, req.arg("TASK"))
        typed = req.command.str_flag("agent")
        agent = agent_of(typed) if typed is not None else task.agent
        if agent is None:
            raise CommandError(
                f"task {render.named(task)} has no agent: `task start {task.id} --agent NAME` "
                "gives it one"
            )
        if task.state not in STARTABLE:
            raise CommandError(_not_startable(task))
        guess = None if typed is None else await self._launches.slip(agent)
        if guess is not None:  # refused before the task takes the name
            raise CommandError(
                f"no agent is called {agent!r} — did you mean {guess!r}? Nothing was started "
                f"and task #{task.id} is unchanged: `task start {task.id} --agent {guess}` "
                f"({_new_one(agent)})"
            )
        origin: Origin = "schedule" if req.source.startswith("schedule:") else "chat"
        request = task_request(task, agent, origin=origin, by=req.who)
        msg = req.message
        asker = Asker(msg.connector, msg.room, msg.sender, msg.thread_id)
        return await self._launch(req, task, request, asker)

    async def held(self, req: Request, held: HeldStart) -> Reply:
        """``task start`` of a task whose wait is over, for its asker (``req``'s sender, the
        ACL as of now): the launch request the register built for it, launched as a typed
        ``task start``'s is."""
        task = await task_of(self._register, str(held.task.id))  # as it is now
        if task.state not in STARTABLE:
            raise CommandError(_not_startable(task))
        return await self._launch(req, task, held.request, None)

    async def _launch(
        self, req: Request, task: TaskRecord, request: LaunchRequest, asker: Asker | None
    ) -> Reply:
        """Start ``task`` as ``request`` — its repository checked and its line asked for
        ``req``'s sender — through the register and the admission, waiting in the spawn
        queue as ``spawn`` does, or held for ``asker`` until what it waits for is done."""
        request, earlier = await self._launches.requests.readied(req, request)
        gate = self._gate
        wait = gate.waiter(req) if gate is not None else None
        started = await self._register.start(task, request, wait, asked_in=asker)
        if isinstance(started, Waiting):
            return Reply(render.waiting(task, started.why), detail=f"task #{task.id} held")
        reply = await self._launches.answer(request.agent, started, earlier)
        line = render.task_line(task)
        return replace(reply, markdown=f"{reply.markdown}\n\n{line}", detail=f"task #{task.id}")

    @command(TASK_DONE, under=TASK)
    async def done(self, req: Request) -> Reply:
        return await self._end(req, "done")

    @command(TASK_CANCEL, under=TASK)
    async def cancel(self, req: Request) -> Reply:
        return await self._end(req, "cancelled")

    async def _end(self, req: Request, state: TaskState) -> Reply:
        """End the task ``req`` names in ``state``. Its agent's run still going for it is
        stopped (what it committed stays on its branch), so the agent is free for the next
        task; a forge task's run goes on until its pull request closes."""
        task = await task_of(self._register, req.arg("TASK"))
        live = await self._register.runs.live_run(task)
        ended = await self._register.end(task, state, f"{state} by {req.who}", by=req.who)
        stopped = live is not None and task.source != "forge"
        forge_going = live is not None and task.source == "forge"
        text = render.ended(ended, task.agent if stopped else None, forge_going=forge_going)
        return Reply(text, detail=f"task #{task.id} {state}")


def _not_startable(task: TaskRecord) -> str:
    if task.state == "working":
        return (
            f"task {render.named(task)} is working: `task {task.id}` shows its run, `stop "
            f"{task.agent}` stops it"
        )
    return f"task {render.named(task)} is {task.state}: `task new` makes another to do again"


def _new_one(agent: str) -> str:
    return f"`spawn {agent} --new` first makes a new agent of that name"


def _quoted(title: str) -> str:
    return title if title.isalnum() else '"' + title.replace('"', "'") + '"'
