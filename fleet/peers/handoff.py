"""Work handed on: ``fw-msg task PEER TITLE [BODY]`` makes a task in the register for the
peer — asked by the sender, part of the sender's current task's mission — and starts it
through the register, so through the one admission like any launch: its runs' spend is
the task's, and its mission's. The same rules as a message hold (the peer, the rate), and
it is recorded as a message of kind ``task`` naming the task, delivered once the register
has taken it. A peer that runs already gets it once its run ends: the message waits
(``queued``) until then, when the task starts as it would have (:meth:`Handoff.hear`, and
at Fleetwarden's start, :meth:`Handoff.sweep`) — if its sender may still reach the peer
then (:meth:`fleet.peers.rules.Rules.reach`, the roster as it is at that moment: after a
reload or a restart). A task whose sender lost that right is refused instead, said in
both agents' threads, and left in the register for an operator's ``task start``. Whether a
watchdog restart may go on with a task handed on is :mod:`fleet.peers.handed`'s, which the
admission asks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from fleet.errors import FleetError
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.peers import MessageRecord
from fleet.ledger.records.tasks import NewTask, TaskRecord
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.peers.framing import frame
from fleet.peers.handed import BY_AGENT, HandedTasks
from fleet.peers.postbox import Postbox
from fleet.supervisor.admission.request import LaunchRequest, Refused, Started
from fleet.tasks.asked import prompt_of
from fleet.tasks.register import Register, shown

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HandedOn:
    """A task handed on: its message (kind ``task``), the task, and what the sender is
    told of its start."""

    message: MessageRecord
    task: TaskRecord
    text: str


class Handoff:
    """Tasks one agent hands another, through the register."""

    def __init__(
        self, *, postbox: Postbox, register: Register, tasks: TasksStore, runs: RunsStore
    ) -> None:
        self._postbox = postbox
        self._register = register
        self._tasks = tasks
        self._runs = runs
        self._handed = HandedTasks(runs=runs, tasks=tasks, rules=postbox.rules)
        self._starts: set[asyncio.Task[None]] = set()  # tasks whose peer became free
        self._lock = asyncio.Lock()  # one start of a waiting task at a time

    async def current_task(self, agent: str, *, ended: bool = False) -> TaskRecord | None:
        """The task ``agent``'s live run (``ended``: or its last run) is bound to, if any."""
        return await self._handed.current_task(agent, ended=ended)

    async def hand(self, sender: str, receiver: str, title: str, body: str = "") -> HandedOn:
        """Make task ``title`` (``body``) for ``receiver``, asked by ``sender``, and start
        it; :class:`PeerRefusal` if the rules refuse it (recorded first). Its title and
        body are redacted before the register keeps them or the peer is told them."""
        title, body = self._postbox.redacted(title), self._postbox.redacted(body)
        async with self._postbox.weighed():  # weighed and made before any other call is
            task, message = await self._make(sender, receiver, title, body)
        said = await self._start(task, message)
        found = await self._tasks.task(task.id) or task
        settled = await self._postbox.message(message.id) or message
        return HandedOn(settled, found, said)

    async def _start(self, task: TaskRecord, message: MessageRecord) -> str:
        """Start ``task`` (handed on by ``message``) through the register; its message
        settled as it went — but left waiting while the peer runs already — and what the
        sender is told."""
        sender, receiver = message.sender, message.receiver
        spec = await self._postbox.rules.sender_spec(sender)
        runtime, host = (spec.runtime, spec.host) if spec is not None else ("?", "?")
        prompt = frame("task", task.id, sender, prompt_of(task), runtime=runtime, host=host)
        request = LaunchRequest(
            agent=receiver, prompt=prompt, by=f"agent {sender}", task=task.id, origin="task"
        )
        try:
            admitted = await self._register.start(task, request, None)
        except FleetError as exc:
            admitted = Refused(f"{exc}")
        words = f"task {shown(task)} for {receiver}"
        if isinstance(admitted, Refused):
            await self._postbox.settle(message.id, why=f"not started: {admitted.why}")
            return f"{words} is made but not started: {admitted.why}"
        if isinstance(admitted, Started) and admitted.outcome.started:
            run = await self._runs.last_run(receiver)
            await self._postbox.settle(message.id, run_id=run.id if run is not None else None)
            return f"{words} started"
        if isinstance(admitted, Started):  # its message waits for the peer's run to end
            return f"{words} is made; {receiver} runs now, so it starts once that run ends"
        await self._postbox.settle(message.id)
        return f"{words} is made and waits: {admitted.why}"

    async def hear(self, event: FleetEvent) -> None:
        """A fleet event: a peer's run that ended starts the first task handed to it
        meanwhile (in the background: never inside the fleet's own news)."""
        if event.kind is EventKind.ENDED:
            self._soon(event.agent)

    async def sweep(self) -> None:
        """At start, and after a reload: each peer with tasks waiting for it has those whose
        sender lost the right to hand them on refused, and gets its first one, if it is
        free."""
        for receiver in dict.fromkeys(m.receiver for m in await self._postbox.tasks_waiting()):
            self._soon(receiver)

    def _soon(self, receiver: str) -> None:
        started = asyncio.get_running_loop().create_task(self._next(receiver))
        self._starts.add(started)
        started.add_done_callback(self._starts.discard)

    async def settled(self) -> None:
        """Once the starts under way now are done."""
        while self._starts:
            await asyncio.gather(*list(self._starts), return_exceptions=True)

    async def _next(self, receiver: str) -> None:
        """Each task waiting for ``receiver`` checked as things are now — its sender's right
        to reach it read from the roster now — and the first one left started."""
        async with self._lock:
            try:
                startable: list[tuple[TaskRecord, MessageRecord]] = []
                for message in await self._postbox.tasks_waiting(receiver):
                    found = message.task_id
                    task = None if found is None else await self._tasks.task(found)
                    if task is None or not task.open:
                        why = "its task ended before it started"
                        await self._postbox.settle(message.id, why=why)
                        continue
                    if task.state != "todo":  # an operator's `task start` took it meanwhile
                        await self._postbox.settle(message.id)
                        continue
                    rules = self._postbox.rules
                    lost = await rules.reach(message.sender, receiver, later=True)
                    if lost is not None:
                        await self._lost(task, message, lost)
                        continue
                    startable.append((task, message))
                if startable:  # one at a time: the next once this run ends
                    said = await self._start(*startable[0])
                    log.info("a task handed on to %s: %s", receiver, said)
            except Exception:  # the next event tries again
                log.exception("a task waiting for %s did not start", receiver)

    async def _lost(self, task: TaskRecord, message: MessageRecord, why: str) -> None:
        """``task``, handed on by ``message`` whose sender lost the right meanwhile
        (``why``): its message refused — told in both agents' threads — and the task left
        in the register for an operator, saying so; never started."""
        if not await self._postbox.settle(message.id, why=f"not started: {why}"):
            return
        said = f"handed on by {message.sender}, not started: {why}"
        said += f"; `task start {task.id}` starts it"
        await self._tasks.move(task.id, "todo", said, came_from=("todo",))
        log.info("a task handed on to %s refused: %s", message.receiver, why)

    async def stop(self) -> None:
        """Start no more waiting task; what waits stays queued for the next start."""
        starts = list(self._starts)
        for start in starts:
            start.cancel()
        await asyncio.gather(*starts, return_exceptions=True)

    async def _make(
        self, sender: str, receiver: str, title: str, body: str
    ) -> tuple[TaskRecord, MessageRecord]:
        """The task made and its message recorded, once the rules allow it."""
        text = f"{title}\n\n{body}" if body else title
        await self._postbox.check(sender, receiver, text, kind="task")
        current = await self.current_task(sender)
        try:
            task = await self._register.new(
                NewTask(
                    title,
                    "task",
                    asked_by=f"{BY_AGENT}{sender}",
                    body=body,
                    source_ref=current.name if current is not None else "",
                    mission=current.mission if current is not None else None,
                    agent=receiver,
                )
            )
        except FleetError as exc:
            await self._postbox.refuse(sender, receiver, text, kind="task", why=f"{exc}")
        message = await self._postbox.record(sender, receiver, text, kind="task", task_id=task.id)
        return task, message
