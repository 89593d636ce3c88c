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
import socket
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.chat.agent_text import quotes_escaped
from bot.commands.errors import CommandError, NotFound
from bot.commands.request import Request
from bot.commands.router import Delegated, Router
from bot.config import Config
from connectors.base import Connector, RoomId, UserId
from fleet.accounts.book import AccountBook
from fleet.accounts.model import AccountError
from fleet.budgets.model import Groups
from fleet.caps import Caps, Occupant, blocked, first_startable
from fleet.clock import Clock
from fleet.errors import FleetError
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger, QueuedSpawn, SpawnAsk
from fleet.ledger.budget_records import Scope
from fleet.model import AgentSpec
from fleet.notices import Notice, NoticeBoard, Tone
from fleet.supervisor.interfaces import AgentControl

log = logging.getLogger(__name__)

_FREEING = frozenset({EventKind.ENDED, EventKind.GAVE_UP})
_STOP_WAIT = 60.0  # seconds a stop lets a queued launch under way finish


def caps_of(cfg: Config) -> Caps:
    """Every concurrency cap the config sets."""
    doc = cfg.document
    return Caps(
        max_running=doc.limits.max_running,
        accounts={n: a.max_running for n, a in doc.accounts.items() if a.max_running},
        scopes={b.scope: b.max_running for b in doc.budgets if b.max_running},
    )


def spawn_queue(
    cfg: Config,
    ledger: Ledger,
    fleet: AgentControl,
    accounts: AccountBook | None,
    clock: Clock,
    notices: NoticeBoard | None,
) -> SpawnQueue:
    """The app's spawn queue, with the config's caps, groups and defaults."""
    return SpawnQueue(
        ledger=ledger,
        fleet=fleet,
        caps=caps_of(cfg),
        groups=cfg.groups,
        accounts=accounts,
        clock=clock,
        default_runtime=cfg.defaults.runtime,
        default_account=cfg.defaults.account,
        notices=notices,
    )


class QueueState(enum.Enum):
    NEW = "new"  # the gate admits and queues; nothing is started from the queue yet
    RUNNING = "running"  # attached to the router: queued launches start as slots free
    STOPPED = "stopped"


class SpawnQueue:
    """The gate ``spawn`` passes, the queue behind it, and the drain that empties it."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        fleet: AgentControl,
        caps: Caps,
        groups: Groups,
        accounts: AccountBook | None,
        clock: Clock,
        default_runtime: str,
        default_account: str | None = None,
        host: str | None = None,
        notices: NoticeBoard | None = None,
    ) -> None:
        self._ledger = ledger
        self._fleet = fleet
        self._caps = caps
        self._groups = groups
        self._accounts = accounts
        self._clock = clock
        self._default_runtime = default_runtime
        self._default_account = default_account
        self.host = host or socket.gethostname()
        self._notices = notices
        self._lock = asyncio.Lock()
        self._reserved: dict[str, Occupant] = {}  # launches admitted, not yet returned
        self._starting: dict[str, int] = {}  # agent -> the entry the drain is starting
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

    async def admit(self, req: Request, *, runtime: str | None, account: str | None) -> str | None:
        """``None`` when the spawn may launch now (it then holds a slot until
        :meth:`release`); else the reply saying it was queued, where, and why."""
        name = req.arg("NAME")
        found = await self._pass(
            name, runtime, account, lambda why: self._ask(req, why, runtime, account)
        )
        if found is None or isinstance(found, str):
            return found
        place, count = await self._place(found)
        return (
            f"Not started now: {found.reason}. Queued as #{found.id}, position {place} of "
            f"{count}: it starts when a slot frees, as you, here. `queue` lists it, "
            f"`cancel {found.id}` drops it."
        )

    async def admit_launch(self, agent: str, reason: str) -> str | None:
        """The roster's own launch of ``agent`` (``reason``: ``autostart``): ``None`` to
        launch now (holding a slot until :meth:`release`), else why it waits in the queue —
        or why it is not launched at all: it works on a forge issue, whose run owns its
        branch and session until it ends."""
        working = await self._ledger.forge.agent_forge_run(agent)
        if working is not None:
            return f"{agent} works on #{working.issue} of {working.slug} ({working.state})"
        found = await self._pass(
            agent,
            None,
            None,
            lambda why: SpawnAsk(agent, f"spawn {agent}", reason, "", "", why),
        )
        return found if found is None or isinstance(found, str) else found.reason

    async def hold(self, agent: str) -> str | None:
        """For ``restart``: ``None`` when ``agent`` runs (its slot is its own) or a slot is
        free (then held until :meth:`release`); else why not — a restart is not queued."""
        found = await self._pass(agent, None, None, None)
        return found if found is None or isinstance(found, str) else found.reason

    async def _pass(
        self,
        name: str,
        runtime: str | None,
        account: str | None,
        ask: Callable[[str], SpawnAsk] | None,
    ) -> QueuedSpawn | str | None:
        """The gate: ``None`` (launch; a slot is reserved), the entry it was queued as (by
        ``ask``), or why not (queued already; or without ``ask``, the full cap)."""
        if not self._caps or name in self._starting:
            return None  # no caps; or the drain's own start, admitted when it was picked
        async with self._lock:
            record = await self._ledger.agents.get_agent(name)
            if record is not None and record.state.is_live:
                return None  # spawn only reports a running agent
            waiting = [e for e in await self._queue() if e.agent == name]
            if waiting:
                entry = waiting[0]
                return f"**{name}** is already queued (#{entry.id}): {entry.reason}."
            candidate = await self._candidate(name, runtime, account)
            why = blocked(candidate, await self._running(), self._caps)
            if why is None:
                self._reserved[name] = candidate
                return None
            if ask is None:
                return why
            return await self._ledger.spawn_queue.enqueue_spawn(ask(why), host=self.host)

    def release(self, agent: str) -> None:
        """The spawn admitted for ``agent`` has returned: its slot is the agent's now (or,
        if it failed, free again)."""
        if self._reserved.pop(agent, None) is not None:
            self.kick()

    async def defer(self, req: Request, until: datetime, why: str) -> str:
        """Queue a spawn its budget turned away, not to start before ``until``; the reply."""
        name = req.arg("NAME")
        entry_id = self._starting.get(name)
        waiting = [e for e in await self._queue() if e.agent == name]
        if entry_id is not None:  # a queued start turned away again: it keeps its place
            await self._ledger.spawn_queue.requeue_spawn(entry_id, why, until)
        elif waiting:
            return f"**{name}** is already queued (#{waiting[0].id}): {waiting[0].reason}."
        else:
            flags = req.command.flags
            runtime, account = _text(flags.get("runtime")), _text(flags.get("account"))
            ask = self._ask(req, why, runtime, account, not_before=until)
            entry_id = (await self._ledger.spawn_queue.enqueue_spawn(ask, host=self.host)).id
        return (
            f"Not started now: {why}. It will be tried again at {until:%H:%M} UTC, as you, "
            f"here (queued as #{entry_id}; `cancel {entry_id}` drops it)."
        )

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
        dropped = [
            e for e in [await self._ledger.spawn_queue.cancel_spawn(c.id) for c in chosen] if e
        ]
        if not dropped:
            raise CommandError(f"{ref} is being started now: it can no longer be cancelled")
        return dropped

    # -- slots freeing ------------------------------------------------------------------------

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A fleet listener: an agent that ended (or was given up on) frees a slot."""
        if event.kind in _FREEING:
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
        async with self._lock:
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
                running=await self._running(),
                caps=self._caps,
            )
            if entry is None:
                return None
            # A `starting` entry was left by a crash mid-start: its claimed id keeps it once.
            if entry.status == "waiting" and not await self._ledger.spawn_queue.mark_spawn_starting(
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
            await self._ledger.spawn_queue.finish_spawn(entry.id)

    async def _launch(self, entry: QueuedSpawn) -> None:
        """Start a roster launch nobody typed (``autostart``) and tell the home rooms and
        the agent's threads."""
        head = f"Queued launch #{entry.id} of **{entry.agent}** ({entry.sender})"
        tone: Tone = "ok"
        try:
            working = await self._ledger.forge.agent_forge_run(entry.agent)
            if working is not None:  # its forge run's branch and session are the issue's
                raise FleetError(
                    f"{entry.agent} works on #{working.issue} of {working.slug} "
                    f"({working.state}); it is not started again until that run ends"
                )
            outcome = await self._fleet.spawn(
                entry.agent,
                by=f"{entry.sender} on {entry.connector}, queued #{entry.id}",
                collect=False,
            )
            text = f"{head} started, pid {outcome.status.pid}."
        except FleetError as exc:
            text, tone = f"{head} could not start: {quotes_escaped(str(exc))}", "error"
        finally:
            await self._ledger.spawn_queue.finish_spawn(entry.id)
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
        return await self._ledger.spawn_queue.queued_spawns(self.host)

    async def _place(self, entry: QueuedSpawn) -> tuple[int, int]:
        ids = [e.id for e in await self._queue()]
        return (ids.index(entry.id) + 1 if entry.id in ids else len(ids)), len(ids)

    async def _running(self) -> list[Occupant]:
        """The agents holding a slot: live ones, those an operation is under way on, and
        launches admitted or picked but not yet returned."""
        names: set[str] = {
            r.name for r in await self._ledger.agents.list_agents() if r.state.is_live
        }
        names |= self._fleet.busy() | set(self._starting)
        held = [self._reserved[n] for n in sorted(self._reserved)]
        return held + [self._occupant(n) for n in sorted(names - set(self._reserved))]

    def _occupant(self, agent: str) -> Occupant:
        pairs = self._accounts.accounts_of(agent) if self._accounts is not None else []
        via = [Scope("account", a) for _, a in pairs] + [Scope("provider", p) for p, _ in pairs]
        chain = tuple(str(s) for s in self._groups.chain(agent, via))
        return Occupant(agent, chain, frozenset(a for _, a in pairs))

    async def _candidate_of(self, entry: QueuedSpawn) -> Occupant:
        request = entry.request
        runtime, account = request.get("runtime"), request.get("account")
        return await self._candidate(entry.agent, _text(runtime), _text(account))

    async def _candidate(self, agent: str, runtime: str | None, account: str | None) -> Occupant:
        """``agent`` as its launch would run: on the accounts it would be given (a pool:
        any of its accounts), under the scopes those make."""
        spec = await self._spec(agent)
        runtime = runtime or (spec.runtime if spec is not None else self._default_runtime)
        same_cli = spec is not None and runtime == spec.runtime
        wanted = account or (spec.account if spec is not None and same_cli else None)
        choices: dict[str, Sequence[str]] = {}
        if self._accounts is not None:
            with contextlib.suppress(AccountError):  # the launch itself will say why
                found = self._accounts.accounts.choices(
                    runtime, wanted, fallback=self._default_account
                )
                choices = {p: tuple(a.name for a in members) for p, members in found.items()}
        fixed = sorted(names[0] for names in choices.values() if len(names) == 1)
        pooled = tuple(tuple(names) for names in choices.values() if len(names) > 1)
        via = [Scope("account", a) for a in fixed] + [Scope("provider", p) for p in choices]
        chain = tuple(str(s) for s in self._groups.chain(agent, via))
        return Occupant(agent, chain, frozenset(fixed), pooled)

    async def _spec(self, agent: str) -> AgentSpec | None:
        spec = next((s for s in self._fleet.roster() if s.name == agent), None)
        if spec is None:
            record = await self._ledger.agents.get_agent(agent)
            spec = record.spec if record is not None else None
        return spec


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
