"""The spawn queue at work: a ``spawn`` that a concurrency cap turns away (or that a queued
budget defers) waits in the ledger, and starts, oldest first, when a slot frees.

The ``spawn`` handler asks :meth:`SpawnQueue.admit` before launching. With every cap
(:mod:`fleet.caps`) leaving room, the launch holds a slot (a reservation, released when
the spawn returns) so two spawns at once cannot both take the last one; otherwise the request is
written to the ledger's spawn queue (:mod:`fleet.ledger.spawn_queue`) with why, and the operator is
told its place. A spawn deferred by its budget is written there too, with ``not_before``. Nothing of
the queue lives only in memory: entries outlive a restart.

Slots free when an agent ends or stops (a fleet event) and, as a safety net, at every
sweep of the ``spawn-queue`` job. Then :meth:`SpawnQueue.drain` takes the queue lock, picks
the oldest entry whose caps allow it and whose time has come, marks it ``starting`` in the
ledger, and runs its command again through :meth:`bot.commands.router.Router.run_as` — as the same
sender (the ACL as of now), in the same room, audited with source ``queue:<id>`` under the
claimed event id ``queue:<id>``, so it runs at most once even across a crash — then removes
it. One drain runs at a time; a slot freed while it runs makes it look again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable
from datetime import datetime

from bot.chat.agent_text import quotes_escaped
from bot.commands.errors import CommandError, NotFound
from bot.commands.request import Request
from bot.commands.router import Delegated, Router
from bot.config import Config
from connectors.base import Connector, RoomId, UserId
from fleet.accounts.book import AccountBook
from fleet.caps import Caps, Occupant, first_startable
from fleet.clock import Clock
from fleet.errors import FleetError
from fleet.events import FleetEvent
from fleet.ledger import QueuedSpawn, SpawnAsk
from fleet.ledger.agents import AgentsStore
from fleet.ledger.forge import ForgeStore
from fleet.ledger.spawn_queue import SpawnQueueStore
from fleet.notices import Notice, NoticeBoard, Tone
from fleet.supervisor.admission.admit import Admission, SpawnBudgets, Wait
from fleet.supervisor.admission.request import LaunchRequest, Queued, Started
from fleet.supervisor.admission.slots import FREEING, Slots
from fleet.supervisor.interfaces import AgentControl

log = logging.getLogger(__name__)

_STOP_WAIT = 60.0  # seconds a stop lets a queued launch under way finish


def caps_of(cfg: Config) -> Caps:
    """Every concurrency cap the config sets."""
    doc = cfg.document
    return Caps(
        max_running=doc.limits.max_running,
        accounts={n: a.max_running for n, a in doc.accounts.items() if a.max_running},
        scopes={b.scope: b.max_running for b in doc.budgets if b.max_running},
    )


def admission_of(
    cfg: Config,
    agents: AgentsStore,
    spawn_queue: SpawnQueueStore,
    accounts: AccountBook | None,
    budgets: SpawnBudgets | None = None,
) -> Callable[[AgentControl], Admission]:
    """The app's admission, made over the fleet it launches through: the config's caps,
    groups and defaults, and the budgets."""

    def made(fleet: AgentControl) -> Admission:
        slots = Slots(
            agents=agents,
            spawn_queue=spawn_queue,
            fleet=fleet,
            caps=caps_of(cfg),
            groups=cfg.groups,
            accounts=accounts,
            default_runtime=cfg.defaults.runtime,
            default_account=cfg.defaults.account,
        )
        return Admission(fleet=fleet, slots=slots, budgets=budgets)

    return made


class QueueState(enum.Enum):
    NEW = "new"  # the gate admits and queues; nothing is started from the queue yet
    RUNNING = "running"  # attached to the router: queued launches start as slots free
    STOPPED = "stopped"


class SpawnQueue:
    """The gate ``spawn`` passes, the queue behind it, and the drain that empties it."""

    def __init__(
        self,
        *,
        spawn_queue: SpawnQueueStore,
        forge: ForgeStore,
        admission: Admission,
        clock: Clock,
        notices: NoticeBoard | None = None,
    ) -> None:
        assert admission.slots is not None
        self._spawn_queue = spawn_queue
        self._forge = forge
        self.admission = admission
        self._slots = admission.slots
        self._slots.freed = self.kick
        self._clock = clock
        self._notices = notices
        self._starting = self._slots.starting  # agent -> the entry the drain is starting
        self._router: Router | None = None
        self._connector_named: Callable[[str], Connector | None] = lambda name: None
        self._task: asyncio.Task[int] | None = None
        self._again = False
        self._state = QueueState.NEW

    def attach(self, router: Router, connector_named: Callable[[str], Connector | None]) -> None:
        """Where queued commands run again: the router, and the running connectors. From
        now on queued launches start as slots free."""
        if self._state is not QueueState.NEW:
            raise RuntimeError(f"SpawnQueue.attach() in state {self._state.value}")
        self._router = router
        self._connector_named = connector_named
        self._state = QueueState.RUNNING

    # -- the spawn handler's side -----------------------------------------------------------

    def waiter(self, req: Request) -> Wait:
        """Where the admission puts ``req``'s launch when it waits: this queue, as its
        sender in its room — or, for a queued start turned away again by its budget, back
        in its own place."""

        async def wait(request: LaunchRequest, why: str, until: datetime | None) -> QueuedSpawn:
            entry_id = self._starting.get(request.agent)
            if entry_id is not None and until is not None:
                await self._spawn_queue.requeue_spawn(entry_id, why, until)
                entry = await self._spawn_queue.queued_spawn(entry_id)
                if entry is not None:
                    return entry
            ask = self._ask(req, why, request.runtime, request.account, not_before=until)
            return await self._spawn_queue.enqueue_spawn(ask, host=self.host)

        return wait

    async def admit(self, req: Request, *, runtime: str | None, account: str | None) -> str | None:
        """The caps alone, for ``req``'s launch: ``None`` when it may launch now (holding
        a slot until :meth:`release`); else the reply saying it was queued, where, and why."""
        request = LaunchRequest(req.arg("NAME"), runtime=runtime, account=account)

        async def enqueue(why: str) -> QueuedSpawn:
            return await self.waiter(req)(request, why, None)

        held = await self._slots.take(request.agent, runtime, account, enqueue)
        if held is None:
            return None
        return await self.said(request.agent, Queued(held.why, held.entry, already=held.already))

    async def defer(self, req: Request, until: datetime, why: str) -> str:
        """Queue ``req``'s launch its budget turned away, not to start before ``until``;
        the reply."""
        name = req.arg("NAME")
        waiting = [e for e in await self._queue() if e.agent == name]
        if waiting and name not in self._starting:
            return await self.said(name, Queued(waiting[0].reason, waiting[0], already=True))
        flags = req.command.flags
        request = LaunchRequest(
            name, runtime=_text(flags.get("runtime")), account=_text(flags.get("account"))
        )
        entry = await self.waiter(req)(request, why, until)
        return await self.said(name, Queued(why, entry, until=until))

    async def said(self, name: str, queued: Queued) -> str:
        """What ``spawn`` says of ``name``'s launch that waits."""
        entry = queued.entry
        if entry is None:  # never: a chat spawn waits in the queue
            return f"Not started now: {queued.why}."
        if queued.already:
            return f"**{name}** is already queued (#{entry.id}): {entry.reason}."
        if queued.until is not None:
            return (
                f"Not started now: {queued.why}. It will be tried again at "
                f"{queued.until:%H:%M} UTC, as you, here (queued as #{entry.id}; "
                f"`cancel {entry.id}` drops it)."
            )
        place, count = await self.place(entry)
        return (
            f"Not started now: {queued.why}. Queued as #{entry.id}, position {place} of "
            f"{count}: it starts when a slot frees, as you, here. `queue` lists it, "
            f"`cancel {entry.id}` drops it."
        )

    @property
    def host(self) -> str:
        return self._slots.host

    async def hold(self, agent: str) -> str | None:
        """For ``restart``: ``None`` when ``agent`` runs (its slot is its own) or a slot is
        free (then held until :meth:`release`); else why not — a restart is not queued."""
        held = await self._slots.take(agent, None, None, None)
        return None if held is None else held.why

    def release(self, agent: str) -> None:
        """The launch held for ``agent`` has returned."""
        self._slots.release(agent)

    # -- the queue and cancel commands' side ------------------------------------------------

    async def entries(self) -> list[QueuedSpawn]:
        """This host's queue, oldest first."""
        return await self._queue()

    async def cancel(self, ref: str) -> list[QueuedSpawn]:
        """Drop entry ``ref`` (its number), or every entry waiting for agent ``ref``; what
        was dropped. Raises :class:`NotFound` for neither, :class:`CommandError` for an
        entry being started now."""
        entries = await self._queue()
        chosen = [e for e in entries if str(e.id) == ref.lstrip("#") or e.agent == ref]
        if not chosen:
            listed = ", ".join(f"#{e.id} {e.agent}" for e in entries) or "the queue is empty"
            raise NotFound(f"nothing queued as {ref!r} ({listed})")
        dropped = [e for e in [await self._spawn_queue.cancel_spawn(c.id) for c in chosen] if e]
        if not dropped:
            raise CommandError(f"{ref} is being started now: it can no longer be cancelled")
        return dropped

    # -- slots freeing ------------------------------------------------------------------------

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A fleet listener: an agent that ended (or was given up on) frees a slot."""
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
        now; how many entries were started."""
        self.kick()
        task = self._task
        return 0 if task is None else await asyncio.shield(task)

    async def restore(self) -> int:
        """At start, once the connectors run: how many entries wait; starts what may."""
        waiting = len(await self._queue())
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
        try:
            while self._again and self._state is QueueState.RUNNING:
                self._again = False
                while self._state is QueueState.RUNNING and (entry := await self._pick()):
                    try:
                        await self._start(entry)
                    finally:
                        self._starting.pop(entry.agent, None)
                    started += 1
        except Exception:  # the next slot freed, or the next sweep, tries again
            log.exception("the spawn queue could not start a queued launch")
        return started

    # -- internals ----------------------------------------------------------------------------

    async def _pick(self) -> QueuedSpawn | None:
        """The next entry to start, marked ``starting`` (and held in memory as starting)."""
        async with self._slots.lock:
            now = self._clock.now()
            queue = [
                e
                for e in await self._queue()
                if e.agent not in self._starting
                and (not e.connector or self._connector_named(e.connector) is not None)
            ]
            if not queue:
                return None
            occupants = {e.id: await self._candidate_of(e) for e in queue}
            entry = first_startable(
                queue,
                now,
                due=QueuedSpawn.due,
                occupant=lambda e: occupants[e.id],
                running=await self._slots.running(),
                caps=self._slots.caps,
            )
            if entry is None:
                return None
            # A `starting` entry was left by a crash mid-start: its claimed id keeps it once.
            if entry.status == "waiting" and not await self._spawn_queue.mark_spawn_starting(
                entry.id
            ):
                return None
            self._starting[entry.agent] = entry.id
            return entry

    async def _start(self, entry: QueuedSpawn) -> None:
        if not entry.connector:
            await self._launch(entry)
            return
        connector, router = self._connector_named(entry.connector), self._router
        if connector is None or router is None:
            return
        run = Delegated(
            sender=UserId(entry.sender),
            room=RoomId(entry.room),
            text=entry.command,
            event_id=f"queue:{entry.id}",
            source=f"queue:{entry.id}",
            at=self._clock.now(),
            heading=(
                f"Queued launch #{entry.id} of **{entry.agent}** (waiting since "
                f"{entry.queued_at:%H:%M} UTC: {entry.reason}), tried now:"
            ),
        )
        try:
            await router.run_as(connector, run)
        finally:
            await self._spawn_queue.finish_spawn(entry.id)

    async def _launch(self, entry: QueuedSpawn) -> None:
        """Start a roster launch nobody typed (``autostart``) and tell the home rooms and
        the agent's threads."""
        head = f"Queued launch #{entry.id} of **{entry.agent}** ({entry.sender})"
        tone: Tone = "ok"
        try:
            working = await self._forge.agent_forge_run(entry.agent)
            if working is not None:  # its forge run's branch and session are the issue's
                raise FleetError(
                    f"{entry.agent} works on #{working.issue} of {working.slug} "
                    f"({working.state}); it is not started again until that run ends"
                )
            request = LaunchRequest(
                entry.agent,
                origin="autostart",
                by=f"{entry.sender} on {entry.connector}, queued #{entry.id}",
                collect=False,
            )
            admitted = await self.admission.admit(request)
            if not isinstance(admitted, Started):  # never: the caps let it start
                raise FleetError(admitted.why)
            text = f"{head} started, pid {admitted.outcome.status.pid}."
        except FleetError as exc:
            text, tone = f"{head} could not start: {quotes_escaped(str(exc))}", "error"
        finally:
            await self._spawn_queue.finish_spawn(entry.id)
        if self._notices is not None:
            failed = tone == "error"
            await self._notices.post(
                Notice(
                    text,
                    tone=tone,
                    agents=(entry.agent,),
                    alert=failed,
                    by=f"{entry.sender} on {entry.connector}" if failed else None,
                )
            )

    def _ask(
        self,
        req: Request,
        why: str,
        runtime: str | None,
        account: str | None,
        not_before: datetime | None = None,
    ) -> SpawnAsk:
        flags = req.command.flags
        request = {key: flags[key] for key in sorted(flags)}
        request.update({k: v for k, v in (("runtime", runtime), ("account", account)) if v})
        msg = req.message
        return SpawnAsk(
            agent=req.arg("NAME"),
            command=msg.text,
            sender=msg.sender,
            connector=msg.connector,
            room=msg.room,
            reason=why,
            request=request,
            thread=msg.thread_id,
            not_before=not_before,
        )

    async def _queue(self) -> list[QueuedSpawn]:
        return await self._slots.queue()

    async def place(self, entry: QueuedSpawn) -> tuple[int, int]:
        """``entry``'s place in the queue (1: next), and how many wait."""
        ids = [e.id for e in await self._queue()]
        return (ids.index(entry.id) + 1 if entry.id in ids else len(ids)), len(ids)

    async def _candidate_of(self, entry: QueuedSpawn) -> Occupant:
        request = entry.request
        runtime, account = request.get("runtime"), request.get("account")
        return await self._slots.candidate(entry.agent, _text(runtime), _text(account))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
