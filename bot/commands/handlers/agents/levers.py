"""The emergency levers: ``freeze NAME|all`` pauses agents' processes at once, ``stop all``
stops every agent at once (``stop NAME`` is handed to the ordinary stop); ``resume``
(:mod:`bot.commands.handlers.agents.resume`) undoes a freeze. ``restart all`` restarts them
one at a time (:mod:`bot.commands.handlers.agents.restart_all`; ``restart NAME`` is handed
to the ordinary restart).

Only an admin pulls them. They act at once, whatever budgets say and whatever waits in the spawn
queue, and never wait on either. ``all`` asks first (:mod:`bot.commands.routing.confirmations`): the
reply names the agents it would act on and the lever acts only on its asker's ``yes`` in the same
place within the minute — then on the agents as they are at that moment (``restart all``: on those
its question named). The router's audit records the command, the question, the ``yes`` and what it
acted on (``Reply.detail``). ``stop all`` and ``freeze all`` cancel a ``restart all`` under way
first, and say so.

A freeze by hand is recorded with who and why: no budget lifts it or takes it over, the
watchdog leaves the frozen agent alone (its silence is not a stall), and only ``resume``
continues it. ``stop all`` first empties the spawn queue — stopping every agent frees every
slot, and the queue would otherwise start its waiting launches into them at once — then
stops every running agent and every agent waiting for a watchdog restart, together, as
``stop`` does (an operator's stop: the watchdog restarts none of them). A frozen agent cannot
heed SIGTERM, so it is killed at once, and its freeze forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from bot.acl import Role
from bot.commands.errors import CommandError, PermissionDenied
from bot.commands.family import Family, command
from bot.commands.handlers.agents.restart_all import RestartAll, Restarted, agents_asked
from bot.commands.handlers.agents.specs import FREEZE, RESTART, STOP
from bot.commands.handlers.launches.spawn_queue import SpawnQueue
from bot.commands.routing.confirmations import CHOICES, ConfirmationDesk
from bot.commands.routing.request import Reply, Request
from bot.text.agent_text import quotes_escaped
from fleet.approvals.spend import SpendAsks
from fleet.errors import AgentNotRunning, FleetError
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.spend.budgets import BudgetsStore
from fleet.model import DesiredState, RestartMode
from fleet.names import ALL_AGENTS as ALL
from fleet.names import agent_name
from fleet.supervisor.interfaces import AgentControl

StopOne = Callable[[Request], Awaitable[str | Reply]]
RestartNamed = Callable[[Request], Awaitable[Reply]]


class Levers(Family):
    """The ``freeze`` handler, and ``stop`` with ``all`` in front of the ordinary one."""

    def __init__(
        self,
        *,
        fleet: AgentControl,
        agents: AgentsStore,
        budgets: BudgetsStore,
        desk: ConfirmationDesk,
        stop_one: StopOne,
        queue: SpawnQueue | None = None,
        asks: SpendAsks | None = None,
        restart_named: RestartNamed | None = None,
        restart_all: RestartAll | None = None,
    ) -> None:
        """``stop_one``: the ordinary ``stop NAME`` handler; ``queue``: the spawn queue
        ``stop all`` empties; ``asks``: the asks at runs' caps a ``stop NAME`` answers;
        ``restart_named``: the ordinary ``restart NAME`` handler; ``restart_all``: ``restart
        all``'s restarts, which :meth:`close` cancels."""
        self._fleet = fleet
        self._agents = agents
        self._budgets = budgets
        self._desk = desk
        self._stop_one = stop_one
        self._queue = queue
        self._asks = asks
        self._restart_named = restart_named
        self._all = restart_all

    async def close(self) -> None:
        """At the app's stop: a ``restart all`` under way cancelled."""
        if self._all is not None:
            await self._all.stop()

    # -- freeze ---------------------------------------------------------------------------

    @command(FREEZE)
    async def freeze(self, req: Request) -> Reply:
        name = req.arg("NAME")
        why = req.command.str_flag("reason") or "no reason given"
        reason = f"by {req.message.sender}: {why}"  # `ps` shows "frozen: by …"
        if name != ALL:
            if not await self._fleet.freeze(name, reason=reason, by=req.message.sender):
                raise AgentNotRunning(f"{name} is not running: there is nothing to freeze")
            text = f"Froze **{name}**: its processes are paused until `resume {name}`."
            line = f"Frozen by {req.message.sender}: {why}."
            return Reply(text, topic=name, thread_line=line, detail=f"froze {name}")
        running = await self._running()
        if not running:
            return Reply("Nothing to freeze: no agent is running.")
        if not req.confirmed:
            summary = f"`freeze all` would pause {_count(running)} now: {', '.join(running)}."
            summary += self._restarting()
            return Reply(
                await self._desk.ask(req, summary), detail="asked: " + summary, choices=CHOICES
            )
        cancelled = await self._cancel_restarts()
        running = await self._running()  # as the cancelled restarts left them
        done, failed = [], []
        for agent in running:
            try:
                if await self._fleet.freeze(agent, reason=reason, by=req.message.sender):
                    done.append(agent)
            except FleetError as exc:
                failed.append(f"{agent} ({quotes_escaped(str(exc))})")
        text = f"Froze {_count(done)}: {', '.join(done) or 'none'}. `resume all` continues them."
        detail = _detail("froze", done, failed) + _cancelled_detail(cancelled)
        return Reply(_with_failures(text, failed) + _cancelled(cancelled), detail=detail)

    async def _running(self) -> list[str]:
        return [status.name for status in await self._fleet.ps() if status.state.is_live]

    # -- stop -----------------------------------------------------------------------------

    @command(STOP)
    async def stop(self, req: Request) -> str | Reply:
        if req.arg("NAME") != ALL:
            name = agent_name(req.arg("NAME"))  # an agent's, never a budget's ask
            if self._asks is None:
                stopped = await self._stop_one(req)
            else:  # its ask at its cap, if open, is answered so once it is stopped
                async with self._asks.stopping(name, by=req.who):
                    stopped = await self._stop_one(req)
            await self._budgets.remove_freeze(name)  # its paused run has ended
            return stopped
        if req.role is not Role.ADMIN:
            raise PermissionDenied(
                f"`stop all` stops every agent and needs the admin role; you are "
                f"{req.role.value} (`stop NAME` stops one)"
            )
        targets = await self._stoppable()
        waiting = await self._queue.entries() if self._queue is not None else []
        if not targets and not waiting:
            return Reply("Nothing to stop: no agent is running or waiting to restart.")
        if not req.confirmed:
            summary = f"`stop all` would stop {_count(targets)} now"
            summary += f": {', '.join(targets)}" if targets else ""
            if waiting:
                queued = ", ".join(f"#{entry.id} {entry.agent}" for entry in waiting)
                summary += f", and drop {len(waiting)} waiting spawn(s) from the queue: {queued}"
            question = summary + "." + self._restarting()
            return Reply(
                await self._desk.ask(req, question), detail="asked: " + summary, choices=CHOICES
            )
        cancelled = await self._cancel_restarts()
        targets = await self._stoppable()  # as the cancelled restarts left them
        dropped = await self._empty_queue()
        force = req.command.bool_flag("force")
        frozen = {freeze.agent for freeze in await self._fleet.frozen()}
        results = await asyncio.gather(
            *(self._stop(agent, req.who, force or agent in frozen) for agent in targets)
        )
        done = [agent for agent, problem in zip(targets, results, strict=True) if problem is None]
        failed = [problem for problem in results if problem is not None]
        text = f"Stopped {_count(done)}: {', '.join(done) or 'none'}."
        if dropped:
            text += f" Dropped from the spawn queue: {', '.join(dropped)}."
        detail = _detail("stopped", done, failed) + (
            f"; dropped {', '.join(dropped)}" if dropped else ""
        )
        detail += _cancelled_detail(cancelled)
        return Reply(_with_failures(text, failed) + _cancelled(cancelled), detail=detail)

    # -- restart --------------------------------------------------------------------------

    @command(RESTART)
    async def restart(self, req: Request) -> Reply:
        if req.arg("NAME") != ALL:
            if self._restart_named is None:
                raise CommandError("restart is not available here")
            return await self._restart_named(req)
        if req.role is not Role.ADMIN:
            raise PermissionDenied(
                f"`restart all` restarts every agent and needs the admin role; you are "
                f"{req.role.value} (`restart NAME` restarts one)"
            )
        if self._all is None:
            raise CommandError("`restart all` is not available here")
        force, only = req.command.bool_flag("force"), req.command.str_flag("only")
        if force and only is not None:
            raise CommandError(
                "`--only idle` restarts no agent mid-turn, `--force` restarts them too: "
                "give one of them"
            )
        if self._all.under_way:
            raise CommandError(
                "a `restart all` is under way already: its summary follows where it was "
                "asked; `stop all` or `freeze all` cancels it"
            )
        named = agents_asked(req.plan) if req.confirmed else None
        plan = await self._all.plan(named)
        if not plan.agents:
            return Reply("Nothing to restart: no agent is running." + plan.left_alone())
        if not req.confirmed:
            summary = plan.question(force=force, only_idle=only is not None)
            question = await self._desk.ask(req, summary, plan.data())
            return Reply(question, detail="asked: " + summary, choices=CHOICES)
        self._all.start(req, plan.agents, force=force, only_idle=only is not None)
        text = (
            f"Restarting {_count(plan.agents)} one at a time: {', '.join(plan.agents)}. "
            "The summary follows here when they are done; `stop all` or `freeze all` "
            "cancels the rest." + plan.left_alone()
        )
        detail = f"restarting {', '.join(plan.agents)}"
        detail += f"; left alone, frozen: {'; '.join(plan.frozen)}" if plan.frozen else ""
        return Reply(text, detail=detail)

    def _restarting(self) -> str:
        """What a ``stop all`` or ``freeze all`` question adds of a ``restart all``."""
        if self._all is None or not self._all.under_way:
            return ""
        return " It first cancels the `restart all` under way."

    async def _cancel_restarts(self) -> Restarted | None:
        return None if self._all is None else await self._all.cancel()

    async def _stoppable(self) -> list[str]:
        """Every agent running, or wanted running and due a restart by the watchdog."""
        found: list[str] = []
        for record in await self._agents.list_agents():
            restarts = record.spec.restart.mode is not RestartMode.NEVER
            wanted = record.desired is DesiredState.RUNNING and restarts
            if record.state.is_live or wanted:
                found.append(record.name)
        return found

    async def _empty_queue(self) -> list[str]:
        if self._queue is None:
            return []
        dropped = []
        for entry in await self._queue.entries():
            try:
                for gone in await self._queue.cancel(str(entry.id)):
                    dropped.append(f"#{gone.id} {gone.agent}")
            except CommandError:  # being started right now: the stop below reaches it
                continue
        return dropped

    async def _stop(self, agent: str, by: str, force: bool) -> str | None:
        """Stop ``agent``; ``None``, or what went wrong."""
        try:
            await self._fleet.stop_agent(agent, force=force, by=by)
        except AgentNotRunning:
            pass  # it was waiting for a restart: it is marked stopped, and stays so
        except FleetError as exc:
            return f"{agent} ({quotes_escaped(str(exc))})"
        await self._budgets.remove_freeze(agent)  # the run it paused has ended
        return None


def _count(agents: Sequence[str]) -> str:
    return f"{len(agents)} agent{'' if len(agents) == 1 else 's'}"


def _cancelled(done: Restarted | None) -> str:
    if done is None:
        return ""
    return (
        f"\n\nCancelled the `restart all` under way; it had restarted "
        f"{', '.join(done.restarted) or 'none'}."
    )


def _cancelled_detail(done: Restarted | None) -> str:
    return "" if done is None else f"; cancelled restart all ({done.detail()})"


def _with_failures(text: str, failed: Sequence[str]) -> str:
    return text if not failed else f"{text}\n\nNot done: {'; '.join(failed)}."


def _detail(verb: str, done: Sequence[str], failed: Sequence[str]) -> str:
    detail = f"{verb} {', '.join(done) or 'none'}"
    return detail + (f"; not done: {'; '.join(failed)}" if failed else "")
