"""What each agent run's thread shows of the run, where the medium can show it (a Slack
agent session's status): :meth:`connectors.base.Connector.show_run_state`, told on every
connector with threads, in each thread the ledger binds to the run's agent
(:meth:`~fleet.ledger.stores.operators.chat.ChatStore.threads_for_topic`, as the approval
feed finds them).

The state follows the fleet's events (:func:`state_of`: started, reattached or restarted → working;
a turn over → idle, or working when the next began at once; frozen → waiting; ended or given up →
ended; thawed → idle or working, as the agent is) and the run's asks
(:mod:`fleet.approvals.service`): while one is open the run is waiting, and when the last is
answered it shows again what the fleet last said. The title is the title of the task the run is done
for, else the agent's name and runtime, at most :data:`TITLE_CHARS` characters. Only a change is
told: a thread is never told the state it shows already. What it remembers is bounded
(:data:`KEEP_RUNS` runs, :data:`KEEP_THREADS` threads, the oldest forgotten first), and nothing it
does raises into the fleet or the approvals: a failure is logged. An agent's threads show its newest
run: what an older one says later (its end after a restart began the next, its ask) is not told.

A state found while a command about the agent is being answered (a spawn, which opens the
run's thread) waits for that answer (:mod:`bot.chat.ordering`), so the thread exists when
it is told.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final, Protocol

from bot.chat.ordering import Ordering
from connectors.base import Connector, RoomId, RunState, ThreadId
from fleet.approvals.budget_asks import NO_RUN, is_budget_ask
from fleet.approvals.service import ApprovalEvent
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.tasks import TaskRecord
from fleet.ledger.stores.operators.chat import ChatStore
from fleet.model import AgentSpec, AgentState

log = logging.getLogger(__name__)

TITLE_CHARS: Final = 200
"""The longest title told (Slack's agent session title)."""
KEEP_RUNS: Final = 2048
"""How many runs' states are remembered: a thousand agents' runs, and their last ones."""
KEEP_THREADS: Final = 4096
"""How many threads' last told states are remembered."""

Connectors = Callable[[], Sequence[Connector]]
Title = Callable[[str, int], Awaitable[str]]
"""The title of run ``run_id`` of ``agent``."""


def state_of(event: FleetEvent) -> RunState | None:
    """The state ``event`` puts its run in; ``None`` when it changes nothing (a stall: the
    run goes on until the watchdog restarts or ends it; a refusal: no run)."""
    match event.kind:
        case EventKind.STARTED | EventKind.REATTACHED | EventKind.RESTARTED:
            return RunState.WORKING
        case EventKind.TURN_OVER:
            return RunState.IDLE if event.state is AgentState.IDLE else RunState.WORKING
        case EventKind.FROZEN:
            return RunState.WAITING
        case EventKind.THAWED:
            return RunState.IDLE if event.state is AgentState.IDLE else RunState.WORKING
        case EventKind.ENDED | EventKind.GAVE_UP:
            return RunState.ENDED
        case _:
            return None


def cut_title(text: str) -> str:
    """``text`` on one line, at most :data:`TITLE_CHARS` characters (an ellipsis ends a
    longer one)."""
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


class TaskTitles(Protocol):
    """What a title needs of the tasks (:class:`~fleet.ledger.stores.work.tasks.TasksStore`)."""

    async def task_of_run(self, run_id: int) -> int | None: ...

    async def task(self, task_id: int) -> TaskRecord | None: ...


def run_title(tasks: TaskTitles, spec: Callable[[str], Awaitable[AgentSpec]]) -> Title:
    """The title of a run: its task's, else ``agent (runtime)`` (the agent's name alone
    when its spec cannot be read)."""

    async def title(agent: str, run_id: int) -> str:
        task_id = await tasks.task_of_run(run_id)
        task = None if task_id is None else await tasks.task(task_id)
        if task is not None and task.title.strip():
            return cut_title(task.title)
        try:
            runtime = (await spec(agent)).runtime
        except Exception:  # an agent forgotten meanwhile: its name says enough
            log.debug("no spec for %s's run title", agent, exc_info=True)
            return cut_title(agent)
        return cut_title(f"{agent} ({runtime})")

    return title


@dataclass(slots=True)
class _Run:
    agent: str
    fleet: RunState  # what the fleet last said
    asks: set[str] = field(default_factory=set)  # its open requests

    @property
    def shown(self) -> RunState:
        return RunState.WAITING if self.asks and self.fleet is not RunState.ENDED else self.fleet


class RunStates:
    """Tells each run's threads its state (see the module): a listener of the fleet and of
    the approvals service."""

    def __init__(
        self,
        chat: ChatStore,
        connectors: Connectors,
        title: Title,
        *,
        ordering: Ordering | None = None,
    ) -> None:
        self._chat = chat
        self._connectors = connectors
        self._title = title
        self._ordering = ordering
        self._runs: OrderedDict[int, _Run] = OrderedDict()
        self._told: OrderedDict[tuple[str, str, str], RunState] = OrderedDict()
        self._newest: OrderedDict[str, int] = OrderedDict()  # each agent's newest run heard of

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A fleet listener: a run's new state, told."""
        state = state_of(event)
        if state is None or event.run_id is None:
            return
        run = self._runs.get(event.run_id) or _Run(event.agent, state)
        run.fleet = state
        if state is RunState.ENDED:
            self._runs.pop(event.run_id, None)
        else:
            self._remember(event.run_id, run)
        await self._tell(event.run_id, run)

    async def on_approval(self, event: ApprovalEvent) -> None:
        """An approvals listener: a run waits while one of its requests is open."""
        request = event.request
        if request.run_id == NO_RUN or is_budget_ask(request.agent):
            return  # a budget's ask: no run of its own
        run = self._runs.get(request.run_id)
        if event.opened and request.state.is_open:
            if run is None:  # a run that asks is at work (one heard of before a restart)
                run = _Run(request.agent, RunState.WORKING)
            run.asks.add(request.id)
            self._remember(request.run_id, run)
        elif not event.opened and run is not None and request.id in run.asks:
            run.asks.discard(request.id)
        else:
            return
        await self._tell(request.run_id, run)

    def _remember(self, run_id: int, run: _Run) -> None:
        self._runs[run_id] = run
        self._runs.move_to_end(run_id)
        while len(self._runs) > KEEP_RUNS:
            self._runs.popitem(last=False)

    async def _tell(self, run_id: int, run: _Run) -> None:
        newest = self._newest.get(run.agent)
        if newest is not None and run_id < newest:
            return  # an older run's news (a late end, its ask): the threads show the newest
        self._newest[run.agent] = run_id
        self._newest.move_to_end(run.agent)
        while len(self._newest) > KEEP_RUNS:
            self._newest.popitem(last=False)
        post = partial(self._show, run.agent, run_id, run.shown)
        if self._ordering is not None and self._ordering.defer((run.agent,), post):
            return  # after the answer to the command about its agent (its spawn)
        await post()

    async def _show(self, agent: str, run_id: int, state: RunState) -> None:
        try:
            title: str | None = None
            for connector in self._connectors():
                if not connector.has_threads:
                    continue
                for room, thread in await self._chat.threads_for_topic(connector.name, agent):
                    key = (connector.name, room, thread)
                    if self._told.get(key) is state:
                        continue
                    if title is None:
                        title = await self._title(agent, run_id)
                    await self._show_on(connector, key, state, title)
        except Exception:  # a thread's status is a nicety: the fleet goes on regardless
            log.exception("could not tell the state of %s's run %s", agent, run_id)

    async def _show_on(
        self, connector: Connector, key: tuple[str, str, str], state: RunState, title: str
    ) -> None:
        _, room, thread = key
        try:
            await connector.show_run_state(RoomId(room), ThreadId(thread), state, title)
        except Exception:  # one connector failing keeps no other from it
            log.exception("%s: the state of thread %s was not shown", connector.name, thread)
            return
        self._told[key] = state
        self._told.move_to_end(key)
        while len(self._told) > KEEP_THREADS:
            self._told.popitem(last=False)
