"""The commands on one agent's runs: ``spawn``, ``send``, ``watch`` (and the ordinary
``stop NAME`` and ``restart NAME``, which :class:`~bot.commands.handlers.agents.levers.Levers`
hands here).

Handlers validate what the grammar cannot (names; a spawn's flags are read by
:mod:`bot.commands.handlers.agents.spawn.request`) and call the fleet; the
renderers in :mod:`bot.render.fleet` shape the answer. Errors are raised, not rendered:
the router turns them into one-line replies and audit outcomes.
"""

from __future__ import annotations

from dataclasses import replace

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.agents.owners import goes_on, taken_words
from bot.commands.handlers.agents.spawn.launching import Launching, SpawnRepos
from bot.commands.handlers.agents.spawn.requests import SpawnRequests
from bot.commands.handlers.agents.watch_follow import agent_view
from bot.commands.routing.request import Follower, Reply, Request
from bot.commands.routing.sources import SHELL
from bot.commands.specs import SEND, SPAWN, WATCH
from bot.render import fleet as render
from bot.render import forge as render_forge
from bot.render import machine
from bot.render.agents import runs as render_runs
from bot.render.work import tasks as render_tasks
from bot.text.agent_text import said
from fleet.errors import AgentNotRunning, FleetError
from fleet.ledger.records.lines import LineRecord
from fleet.ledger.records.tasks import TaskRecord
from fleet.repos.schema import ref_problem
from fleet.supervisor.admission.owners import ForgeRuns, on_an_issue
from fleet.supervisor.admission.queue import Launch
from fleet.supervisor.admission.request import (
    Admitted,
    LaunchRequest,
    Queued,
    Refused,
    Started,
)
from fleet.supervisor.interfaces import AgentControl
from fleet.supervisor.status import AgentStatus
from fleet.tasks.register import Register
from fleet.tasks.runs import start_words
from fleet.timing.clock import Clock


class Handlers(Family):
    """The commands on one agent's runs, bound to one :class:`~fleet.supervisor.fleet.Fleet`."""

    def __init__(
        self,
        *,
        fleet: AgentControl,
        clock: Clock,
        launching: Launching,
        follow_screen: Follower | None = None,
        repos: SpawnRepos | None = None,
        forge_runs: ForgeRuns | None = None,
        register: Register | None = None,
    ) -> None:
        """``launching``: the path a spawn's launch takes (the admission, the queue, the
        spend). ``repos``: the repositories ``spawn --repo`` works on and who asks in git
        (``None``: none configured). ``forge_runs``: the live forge runs (of an agent), which
        a chat run of the agent would take over. ``register``: the tasks; a ``spawn`` with
        a prompt is one (``None``: no register)."""
        self._fleet = fleet
        self._forge_runs = forge_runs
        self._repos = repos.desk if repos is not None else None
        self._stories = fleet.outputs.stories
        self._admission = launching.admission
        self._gate = launching.gate
        self._spend = launching.spend
        self._clock = clock
        self._follow_screen = follow_screen
        self._register = register
        self.requests = SpawnRequests(fleet=fleet, repos=repos, spend=launching.spend)
        """``spawn``'s launch requests, and a task's readied for its asker."""

    @command(SPAWN)
    async def spawn(self, req: Request) -> Reply:
        request, earlier = await self._request(req)
        stranger = await self._admission.stranger(request)
        if stranger is not None:  # a likely typo: refused before a task is opened for it
            return await self.answer(request.agent, Refused(stranger), earlier)
        task = None  # a second run of a live agent is never started: no task for it
        if request.fresh or not await self._live(request.agent):
            request, task = await self._tasked(req, request)
        gate = self._gate
        admitted = await self._admission.admit(request, gate.waiter(req) if gate else None)
        if task is not None:
            await self._not_started(task, admitted, req.who)
        reply = await self.answer(request.agent, admitted, earlier)
        if task is None:
            return reply
        text = f"{reply.markdown}\n\n{render_tasks.task_line(task)}"
        launched = isinstance(admitted, Queued) or (
            isinstance(admitted, Started) and admitted.outcome.started
        )
        going_on = await self._goes_on(request) if launched else ""
        if going_on:
            text += f"\n\n{going_on}"
        return replace(reply, markdown=text)

    async def _goes_on(self, request: LaunchRequest) -> str:
        """What to say when ``request`` (a spawn with a prompt: a new task), as the
        admission took it, goes on an earlier task's line not merged yet — its work and the
        new task's land as one — and how to start it on a branch of its own (``--fresh``);
        empty when it does not (a line it cut anew has no earlier task)."""
        repos, register = self._repos, self._register
        if repos is None or register is None or request.fresh:
            return ""
        line = await repos.line_of(request.agent)
        if line is None or request.repo not in (None, line.repo):
            return ""
        if request.repo_base not in (None, line.base_ref):  # a new line, from another base
            return ""
        earlier = [t for t in await register.runs.on_line(line) if t.id != request.task]
        if not earlier:
            return ""
        tasks = ", ".join(f"{render_tasks.named(t)} ({t.state})" for t in earlier[-3:])
        whose = f"task{'s' if len(earlier) > 1 else ''} {tasks}"
        branch = said(line.branch, 80)
        agent = request.agent
        return (
            f"⚠ This run goes on {branch}, the branch of {whose}, not merged yet: that work "
            f"and the new task's land together. To keep them apart, `stop {agent}`, then "
            f"`spawn {agent} --fresh --prompt …` starts the new task on a branch of its own "
            f"from {said(line.base_ref, 80)}."
        )

    async def _not_started(self, task: TaskRecord, admitted: Admitted, by: str) -> None:
        """A spawn's task whose launch was refused, or whose agent already ran, did not
        happen: it is cancelled, saying why (a queued one waits as its launch does)."""
        register = self._register
        assert register is not None
        if isinstance(admitted, Refused):
            why = f"not started: {admitted.why}"
        elif isinstance(admitted, Started) and not admitted.outcome.started:
            why = f"not started: {task.agent} was already running"
        else:
            return
        found = await register.find(str(task.id))
        if found.open:
            await register.end(found, "cancelled", why, by=by)

    async def queued(self, req: Request, held: LaunchRequest | None, launch: Launch) -> Reply:
        """``spawn`` as a queued entry of ``req`` starts: the request it holds (``None``:
        an entry written before requests were held, read as its command says), launched
        through ``launch``; answered as a typed ``spawn`` is."""
        if held is None:
            request, earlier = await self._request(req)
        else:
            request = held
            repos = self._repos
            fresh = request.fresh and repos is not None
            earlier = await repos.line_of(request.agent) if fresh and repos else None
        return await self.answer(request.agent, await launch(request), earlier)

    async def _tasked(
        self, req: Request, request: LaunchRequest
    ) -> tuple[LaunchRequest, TaskRecord | None]:
        """``request`` done for a new task, when it has a prompt: a chat ``spawn`` with a
        prompt, or an operator schedule's, is a piece of work in the register."""
        register = self._register
        if register is None or not request.prompt:
            return request, None
        runtime = request.runtime
        if runtime is None:
            try:
                runtime = (await self._fleet.spec(request.agent)).runtime
            except FleetError:  # an agent this spawn makes: its runtime is the defaults'
                runtime = None
        task = await register.for_prompt(
            agent=request.agent,
            prompt=request.prompt,
            by=req.who,
            event=req.message.event_id,
            runtime=runtime,
            repo=request.repo,
        )
        return replace(request, task=task.id), task

    async def _request(self, req: Request) -> tuple[LaunchRequest, LineRecord | None]:
        """The launch ``req`` asks for, and the earlier live line a ``--fresh`` leaves."""
        return await self.requests.launch_request(req, req.arg("NAME"), req.command.flags)

    async def slip(self, agent: str) -> str | None:
        """The known agent a typed ``agent`` is likely a slip of (the naming stage's rule,
        for a command that takes an agent's name before it launches), or ``None``."""
        return await self._admission.meant(LaunchRequest(agent))

    async def answer(self, name: str, admitted: Admitted, earlier: LineRecord | None) -> Reply:
        """What ``spawn`` (and ``task start``) says of ``name``'s launch as the admission
        took it."""
        gate, spend = self._gate, self._spend
        if isinstance(admitted, Refused):
            raise CommandError(f"not started: {admitted.why}")
        if isinstance(admitted, Queued):
            assert gate is not None  # a chat spawn waits only in the queue
            return Reply(await gate.said(name, admitted), data=machine.spawn_queued(name, admitted))
        outcome, note = admitted.outcome, admitted.fallback
        note = f"\n\n{note}" if note else ""
        ended = outcome.ended
        run = ended.run.id if ended is not None else await self._open_run(name)
        data = machine.spawned(outcome.status, outcome.started, run)
        if ended is not None and ended.end is not None and ended.end.outcome != "finished":
            story = await self._stories.story(ended.run.id)
            if story is not None:  # it failed at once: why, in one line
                line = render_runs.ended_at_once(story, self._clock.now())
                return Reply(line + note, topic=outcome.status.name, new_thread=True, data=data)
        text = render.spawned(outcome.status, outcome.started, outcome.pid)
        if earlier is not None and outcome.started:
            text += "\n\n" + _left_live(earlier.branch)
        if spend is not None and outcome.started:
            text += "\n\n" + await spend.answer(name)
        # A fresh run gets a thread of its own; "already running" points to the one it has.
        name = outcome.status.name
        return Reply(text + note, topic=name, new_thread=outcome.started, data=data)

    async def _open_run(self, name: str) -> int | None:
        """The id of ``name``'s open run, if it has one."""
        return dict(await self._fleet.outputs.open_runs()).get(name)

    async def _not_on_an_issue(self, name: str) -> None:
        """A restart of an agent working on a forge issue would take over its branch and
        its session (a launch's own check is the admission's ownership stage)."""
        record = await on_an_issue(self._forge_runs, name)
        if record is not None:
            raise CommandError(taken_words(name, record, await self._live(name)))

    async def _live(self, name: str) -> bool:
        """Whether ``name``'s session runs (``False``: not known)."""
        try:
            return (await self._fleet.status(name)).state.is_live
        except FleetError:
            return False

    async def stop(self, req: Request) -> Reply:
        """The ordinary ``stop NAME``: ``stop`` is bound in
        :class:`~bot.commands.handlers.agents.levers.Levers`, which hands every stop but ``stop
        all``
        to this."""
        name = req.arg("NAME")
        working = await self._working_task(name)
        info = await self._fleet.stop_agent(
            name, force=bool(req.command.flags.get("force")), by=req.who
        )
        line = f"Stopped by {req.message.sender} ({said(info.reason, render.WHY_CAP)})."
        data = machine.stopped(name, info)
        text = render.stopped(name, info)
        if working is not None:  # its run's end moves it back, which nothing else says
            text += f" Task #{working.id} back to todo: {start_words(working)} runs it again."
        return Reply(text, topic=name, thread_line=line, data=data)

    async def _working_task(self, name: str) -> TaskRecord | None:
        """The task ``name``'s live run works on, which its stop sends back to ``todo``."""
        register = self._register
        if register is None:
            return None
        for view in await register.board(states=("working",)):
            task = view.task
            if task.agent == name and await register.runs.live_run(task) is not None:
                return task
        return None

    async def restart(self, req: Request) -> Reply:
        """The ordinary ``restart NAME``: ``restart`` is bound in
        :class:`~bot.commands.handlers.agents.levers.Levers`, which hands every restart but
        ``restart all`` to this."""
        name = req.arg("NAME")
        if req.command.bool_flag("force") or req.command.str_flag("only") is not None:
            raise CommandError(
                f"`--force` and `--only` go with `restart all`, not `restart {name}`"
            )
        status = await self.restart_agent(name, req.who)
        line = f"Restarted by {req.message.sender}, now pid {status.pid}."
        data = machine.restarted(status)
        return Reply(render.restarted(status), topic=name, thread_line=line, data=data)

    async def restart_agent(self, name: str, by: str) -> AgentStatus:
        """Restart ``name`` for ``by``, as ``restart NAME`` (and each of ``restart all``)
        does; raises what refused it."""
        await self._not_on_an_issue(name)  # its forge run's session and branch are the issue's
        # Through the admission (origin ``restart``): the caps a restart must fit hold it
        # without queueing it.
        admitted = await self._fleet.restart(name, by=by)
        if isinstance(admitted, Queued):
            raise CommandError(f"not restarted: {admitted.why} — `spawn {name}` waits for a slot")
        if isinstance(admitted, Refused):
            raise CommandError(f"not restarted: {admitted.why}")
        return admitted.outcome.status

    @command(SEND)
    async def send(self, req: Request) -> Reply:
        name, text = req.arg("NAME"), req.arg("TEXT")
        if not text.strip():
            raise CommandError(f"nothing to send — usage: send {name} TEXT")
        try:
            ended = await self._fleet.send(name, text, by=req.who)
        except AgentNotRunning as exc:  # "spawn it first": not for an agent on an issue
            record = await on_an_issue(self._forge_runs, name)
            if record is None:
                raise
            raise CommandError(
                f"{name} has no live session to send to, and works on "
                f"{render_forge.links(record)} ({record.state}): {goes_on(record)}"
            ) from exc
        if ended is not None and ended.end is not None and ended.end.outcome != "finished":
            story = await self._stories.story(ended.run.id)
            if story is not None:  # its follow-up failed at once: why, in one line
                line = render_runs.ended_at_once(story, self._clock.now())
                return Reply(line, topic=name, data=machine.sent(name, line))
        here = req.message.connector != SHELL  # a shell is shown none of the output
        return Reply(render.sent(name, here=here), topic=name, data=machine.sent(name))

    @command(WATCH)
    async def watch(self, req: Request) -> Reply:
        name = req.arg("NAME")
        view = await agent_view(self._fleet, name)
        if req.command.flags.get("follow") and self._follow_screen is not None:
            self._follow_screen(req.message, name, view)
        return Reply(view, topic=name, open_thread=True)


def _left_live(branch: str) -> str:
    """What ``spawn --fresh`` says of the agent's earlier branch, which it leaves as it was."""
    if ref_problem(branch) is not None:  # not one of Fleetwarden's names: no command shown
        return f"Its earlier branch {said(branch, 80)} stays as it was: `branches` lists it."
    return (
        f"Its earlier branch {said(branch, 80)} stays as it was: name it by its branch — "
        f"`diff {branch}`, `push {branch}`, `merge {branch}` or `discard {branch}`."
    )
