"""The spawn queue: launches the admission holds (a concurrency cap is full, or a queued
budget deferred them) wait in the ledger (:mod:`fleet.ledger.stores.running.spawn_queue`), each
with its
:class:`~fleet.supervisor.admission.request.LaunchRequest` itself
(:mod:`fleet.supervisor.admission.held`), and start, oldest first, when a slot frees.

Where a launch came from is told how it went through the :class:`Listener` registered for
its origin (chat, the roster's own launches, a forge run): asked first whether the entry
may start now (its room is reachable), then handed the entry and the launch to make
through the admission, which it makes (or does not: the sender may no longer be let) and
answers on. Nothing of the queue lives only in memory: entries outlive a restart.

Slots free when an agent ends or stops (a fleet event), when an admitted launch returns,
and, as a safety net, at every sweep of the ``spawn-queue`` job. Then :meth:`drain` takes
the slots' lock, picks the oldest entry whose caps allow it, whose time has come and whose
origin is ready, marks it ``starting`` in the ledger (so it starts at most once, even
across a crash: the listener claims its start by the entry's id), hands it to its
listener, then removes it — unless its budget turned it away again, which puts it back in
its place. One drain runs at a time; a slot freed while it runs makes it look again.
An entry the budgets' holds (:mod:`fleet.budgets.quoting.holds`) leave no room for is passed
over until they do (a run ends, or spends into its hold); turned away all the same, it goes
back in its place too.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from fleet.caps import Occupant, first_startable
from fleet.errors import FleetError
from fleet.events import FleetEvent
from fleet.ledger import QueuedSpawn, SpawnAsk
from fleet.ledger.stores.running.spawn_queue import QueueOrigin, SpawnQueueStore
from fleet.supervisor.admission.admit import Admission, Wait
from fleet.supervisor.admission.held import held, request_of
from fleet.supervisor.admission.request import Admitted, LaunchRequest
from fleet.supervisor.admission.slots import FREEING, Slots
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

_STOP_WAIT = 60.0  # seconds a stop lets a queued launch under way finish

Launch = Callable[[LaunchRequest], Awaitable[Admitted]]
"""A queued entry's launch through the admission (its slot was counted when it was picked;
a budget that turns it away again puts it back in its place)."""


class Listener(Protocol):
    """Where queued launches of one origin came from, told how they went."""

    def ready(self, entry: QueuedSpawn) -> bool:
        """Whether ``entry`` may start now (where it is answered is reachable)."""
        ...

    async def start(self, entry: QueuedSpawn, launch: Launch) -> None:
        """Start ``entry`` through ``launch`` — or not, when it may no longer be — and say
        how it went. Called at most once per entry, but after a crash mid-start it may be
        called again: the listener claims the start by the entry's id."""
        ...


class QueueState(enum.Enum):
    NEW = "new"  # launches are admitted and queued; nothing is started from the queue yet
    RUNNING = "running"  # queued launches start as slots free
    STOPPED = "stopped"


class LaunchQueue:
    """The queue behind the admission, and the drain that empties it."""

    def __init__(self, *, store: SpawnQueueStore, admission: Admission, clock: Clock) -> None:
        assert admission.slots is not None
        self._store = store
        self.admission = admission
        self.slots: Slots = admission.slots
        self.slots.listen_freed(self.kick)  # a slot let go: an entry may start
        self._clock = clock
        self._listeners: dict[str, Listener] = {}
        self._starting = self.slots.starting  # agent -> the entry the drain is starting
        self._task: asyncio.Task[int] | None = None
        self._again = False
        self._state = QueueState.NEW

    def listen(self, origin: QueueOrigin, listener: Listener) -> None:
        """Tell ``listener`` how the queued launches from ``origin`` go."""
        self._listeners[origin] = listener

    def open(self) -> None:
        """From now on queued launches start as slots free."""
        if self._state is not QueueState.NEW:
            raise RuntimeError(f"LaunchQueue.open() in state {self._state.value}")
        self._state = QueueState.RUNNING

    @property
    def host(self) -> str:
        return self.slots.host

    def waiter(self, ask: SpawnAsk, turn: int | None = None) -> Wait:
        """Where a held launch waits: this queue, as ``ask`` says who asked and where (its
        agent, reason and times are the request's) — or, for the queue's own start of entry
        ``turn`` turned away again, back in its own place (any other launch of an agent
        the queue is starting waits in a place of its own)."""

        async def wait(request: LaunchRequest, why: str, until: datetime | None) -> QueuedSpawn:
            entry_id = self._starting.get(request.agent)
            if entry_id is not None and entry_id == turn:  # turned away again: its place
                await self._store.requeue_spawn(entry_id, why, until)
                entry = await self._store.queued_spawn(entry_id)
                if entry is not None:
                    return entry
            chosen = {k: v for k, v in (("runtime", request.runtime), ("account", request.account))}
            written = replace(
                ask,
                agent=request.agent,
                reason=why,
                not_before=until,
                request={**ask.request, **{k: v for k, v in chosen.items() if v}},
                launch=held(request),
            )
            return await self._store.enqueue_spawn(written, host=self.host)

        return wait

    async def turn_of(self, agent: str, origin: QueueOrigin, ref: str) -> int | None:
        """The entry of ``origin`` and ``ref`` this queue is starting ``agent`` from now
        (its launch is the queue's own start of it), if any."""
        entry_id = self._starting.get(agent)
        if entry_id is None:
            return None
        entry = await self._store.queued_spawn(entry_id)
        own = entry is not None and (entry.origin, entry.ref) == (origin, ref)
        return entry_id if own else None

    # -- what waits -------------------------------------------------------------------------

    async def entries(self) -> list[QueuedSpawn]:
        """This host's queue, oldest first."""
        return await self.slots.queue()

    async def cancel(self, entry_id: int) -> QueuedSpawn | None:
        """Drop waiting entry ``entry_id``; what it was, or ``None`` when it is not waiting
        (gone, or being started now)."""
        return await self._store.cancel_spawn(entry_id)

    # -- slots freeing ------------------------------------------------------------------------

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A fleet listener: an agent that ended (or was given up on) frees a slot, and
        what its run held."""
        if event.kind in FREEING:
            self.kick()

    def kick(self) -> None:
        """Look for an entry to start, soon, in a task of our own (never in the caller's:
        a stop must not wait for the next agent's launch)."""
        if self._state is not QueueState.RUNNING:
            return
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.drain(), name="spawn-queue")

    async def sweep(self) -> int:
        """The periodic safety net (and what makes a deferred entry start once due): drain
        now; how many entries were started. Then the tasks held ``queued`` whose entry is
        gone (cancelled, or refused as it started) are settled."""
        self.kick()
        task = self._task
        started = 0 if task is None else await asyncio.shield(task)
        if self.admission.tasks is not None:
            await self.admission.tasks.settle_queued()
        return started

    async def restore(self) -> int:
        """At start, once where entries are answered is reachable: how many entries wait;
        starts what may."""
        waiting = len(await self.entries())
        if waiting:
            log.info("%d queued launch(es) restored", waiting)
            self.kick()
        return waiting

    async def stop(self) -> None:
        """Start nothing more. A start under way is let finish (a launch cut in the middle
        would leave a process the ledger does not know) for up to a minute, then cancelled:
        its entry stays ``starting``, to be tried again at the next start."""
        self._state = QueueState.STOPPED
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), _STOP_WAIT)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self) -> int:
        """Start entries one by one, oldest eligible first, until none may start."""
        started = 0
        tried: set[int] = set()  # put back in its place: not tried twice in one drain
        try:
            while self._again and self._state is QueueState.RUNNING:
                self._again = False
                while self._state is QueueState.RUNNING and (entry := await self._pick(tried)):
                    tried.add(entry.id)
                    try:
                        await self._start(entry)
                    finally:
                        self._starting.pop(entry.agent, None)
                    started += 1
        except Exception:  # the next slot freed, or the next sweep, tries again
            log.exception("the spawn queue could not start a queued launch")
        return started

    # -- internals ----------------------------------------------------------------------------

    async def _pick(self, tried: AbstractSet[int] = frozenset()) -> QueuedSpawn | None:
        """The next entry to start, marked ``starting`` (and held in memory as starting);
        ``tried``: entries this drain tried already."""
        async with self.slots.lock:
            queue = [
                e
                for e in await self.entries()
                if e.agent not in self._starting
                and e.id not in tried
                and self._ready(e)
                and await self._fits(e)
            ]
            if not queue:
                return None
            occupants = {e.id: await self._candidate_of(e) for e in queue}
            entry = first_startable(
                queue,
                self._clock.now(),
                due=QueuedSpawn.due,
                occupant=lambda e: occupants[e.id],
                running=await self.slots.running(),
                caps=self.slots.caps,
            )
            if entry is None:
                return None
            # A `starting` entry was left by a crash mid-start: its claimed start keeps it once.
            if entry.status == "waiting" and not await self._store.mark_spawn_starting(entry.id):
                return None
            self._starting[entry.agent] = entry.id
            return entry

    async def _fits(self, entry: QueuedSpawn) -> bool:
        """Whether what live runs hold leaves ``entry``'s quote room now (an entry that
        cannot be read is tried, and says why)."""
        try:
            request = request_of(entry)
        except FleetError:
            return True
        return request is None or await self.admission.no_room(request, entry.id) is None

    def _ready(self, entry: QueuedSpawn) -> bool:
        listener = self._listeners.get(entry.origin)
        return listener is not None and listener.ready(entry)

    async def _start(self, entry: QueuedSpawn) -> None:
        listener = self._listeners[entry.origin]
        wait = self.waiter(_ask_of(entry), entry.id)

        async def launch(request: LaunchRequest) -> Admitted:
            return await self.admission.admit(request, wait, entry.id)

        try:
            await listener.start(entry, launch)
        finally:
            await self._store.finish_spawn(entry.id)

    async def _candidate_of(self, entry: QueuedSpawn) -> Occupant:
        try:
            request = request_of(entry)
        except FleetError:  # unreadable: counted as the agent's own settings
            request = None
        if request is not None:
            return await self.slots.candidate(entry.agent, request.runtime, request.account)
        runtime, account = entry.request.get("runtime"), entry.request.get("account")
        return await self.slots.candidate(entry.agent, _text(runtime), _text(account))


def _ask_of(entry: QueuedSpawn) -> SpawnAsk:
    """What ``entry`` says of who asked and where, to write a launch of it again."""
    return SpawnAsk(
        agent=entry.agent,
        command=entry.command,
        sender=entry.sender,
        connector=entry.connector,
        room=entry.room,
        reason=entry.reason,
        request=entry.request,
        thread=entry.thread,
        origin=entry.origin,
        ref=entry.ref,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
