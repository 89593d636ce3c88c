"""The spawn queue as chat sees it: a ``spawn`` that a concurrency cap turns away (or that
a queued budget defers) waits in the admission's queue
(:class:`~fleet.supervisor.admission.queue.LaunchQueue`) as its sender in its room, and
``queue`` and ``cancel`` read and drop its entries.

The ``spawn`` handler passes the admission with :meth:`SpawnQueue.waiter`: a launch it
holds is written to the queue with the request itself, the command as typed, who asked and
where, and the operator is told its place. When its turn comes, the queue hands it back
here (:class:`~bot.commands.handlers.launches.queue_starts.ChatStarts`): it starts as its sender —
the ACL as of now —, in the same room, audited with source ``queue:<id>`` under the
claimed event id ``queue:<id>`` (so it starts at most once even across a crash), and is
answered there as a typed ``spawn`` is. The roster's own launches that waited are told in
the home rooms (:class:`~bot.commands.handlers.launches.queue_starts.RosterStarts`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.commands.errors import CommandError, NotFound
from bot.commands.handlers.launches.queue_starts import ChatStarts, QueuedSpawner, RosterStarts
from bot.commands.routing.request import Request
from bot.commands.routing.router import Router
from bot.config import Config
from connectors.base import Connector
from fleet.accounts.book import AccountBook
from fleet.caps import Caps
from fleet.events import FleetEvent
from fleet.ledger import QueuedSpawn, SpawnAsk
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.spawn_queue import SpawnQueueStore
from fleet.notices import NoticeBoard
from fleet.supervisor.admission.admit import Wait
from fleet.supervisor.admission.queue import LaunchQueue
from fleet.supervisor.admission.request import LaunchRequest, Queued
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.launcher import Launcher
from fleet.timing.clock import Clock


def caps_of(cfg: Config) -> Caps:
    """Every concurrency cap the config sets."""
    doc = cfg.document
    return Caps(
        max_running=doc.limits.max_running,
        accounts={n: a.max_running for n, a in doc.accounts.items() if a.max_running},
        scopes={b.scope: b.max_running for b in doc.budgets if b.max_running},
    )


def slots_of(
    cfg: Config,
    launcher: Launcher,
    agents: AgentsStore,
    spawn_queue: SpawnQueueStore,
    accounts: AccountBook | None,
) -> Slots:
    """The concurrency caps the admission's caps stage keeps: the config's caps, groups and
    defaults, over the launcher (the agents it is busy on, its roster)."""
    return Slots(
        agents=agents,
        spawn_queue=spawn_queue,
        fleet=launcher,
        caps=caps_of(cfg),
        groups=cfg.groups,
        accounts=accounts,
        default_runtime=cfg.defaults.runtime,
        default_account=cfg.defaults.account,
    )


class SpawnQueue:
    """The queue ``spawn`` waits in, as chat sees it and answers from it."""

    def __init__(
        self,
        *,
        launches: LaunchQueue,
        forge: ForgeStore,
        clock: Clock,
        notices: NoticeBoard | None = None,
    ) -> None:
        self.launches = launches
        self.admission = launches.admission
        self._slots = launches.slots
        self._clock = clock
        launches.listen("autostart", RosterStarts(forge=forge, notices=notices))

    def open(
        self,
        router: Router,
        connector_named: Callable[[str], Connector | None],
        spawner: QueuedSpawner,
    ) -> None:
        """Queued chat launches, from now on started as slots free: each through the
        router as its sender, in its room, by ``spawn`` as it starts a held request."""
        chat = ChatStarts(self._clock, router, connector_named, spawner)
        self.launches.listen("chat", chat)
        self.launches.open()

    # -- the spawn handler's side -----------------------------------------------------------

    def waiter(self, req: Request) -> Wait:
        """Where the admission puts ``req``'s launch when it waits: the queue, as its
        sender in its room — or, for a queued start turned away again by its budget, back
        in its own place (the queue's start of an entry is its event ``queue:<id>``)."""
        return self.launches.waiter(_ask(req), _turn(req))

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
        if waiting and name not in self._slots.starting:
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
                f"{queued.until:%H:%M} UTC, as you, here (queued as #{entry.id}: `queue` "
                f"lists it, `cancel {entry.id}` drops it)."
            )
        place, count = await self.place(entry)
        frees = "a run ends and its hold is let go" if queued.held else "a slot frees"
        return (
            f"Not started now: {queued.why}. Queued as #{entry.id}, position {place} of "
            f"{count}: it starts when {frees}, as you, here. `queue` lists it, "
            f"`cancel {entry.id}` drops it."
        )

    @property
    def host(self) -> str:
        return self.launches.host

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
        every = await self.launches.entries()
        entries = [e for e in every if e.origin != "forge"]
        chosen = [e for e in entries if str(e.id) == ref.lstrip("#") or e.agent == ref]
        if not chosen:
            listed = ", ".join(f"#{e.id} {e.agent}" for e in entries)
            listed = listed or "no launch from chat waits"
            if any(str(e.id) == ref.lstrip("#") or e.agent == ref for e in every):
                listed += (
                    f"; {ref} is a forge run's place, which its issue owns: remove the "
                    "issue's label (or unassign it) to drop it"
                )
            raise NotFound(f"nothing queued as {ref!r} ({listed})")
        dropped = [e for e in [await self.launches.cancel(c.id) for c in chosen] if e]
        if not dropped:
            raise CommandError(f"{ref} is being started now: it can no longer be cancelled")
        return dropped

    # -- slots freeing ------------------------------------------------------------------------

    async def on_fleet_event(self, event: FleetEvent) -> None:
        """A fleet listener: an agent that ended (or was given up on) frees a slot."""
        await self.launches.on_fleet_event(event)

    def kick(self) -> None:
        """Look for an entry to start, soon."""
        self.launches.kick()

    async def sweep(self) -> int:
        """The periodic safety net: drain now; how many entries were started."""
        return await self.launches.sweep()

    async def restore(self) -> int:
        """At start, once the connectors run: how many entries wait; starts what may."""
        return await self.launches.restore()

    async def stop(self) -> None:
        """Start nothing more (a start under way is let finish, for up to a minute)."""
        await self.launches.stop()

    async def drain(self) -> int:
        """Start entries one by one, oldest eligible first, until none may start."""
        return await self.launches.drain()

    async def _queue(self) -> list[QueuedSpawn]:
        """The entries chat lists and drops: a forge run's wait is its issue's (``queue``
        lists it among the forge runs)."""
        return [e for e in await self.launches.entries() if e.origin != "forge"]

    async def place(self, entry: QueuedSpawn) -> tuple[int, int]:
        """``entry``'s place among the launches chat lists (1: next), and how many wait
        there — as ``queue`` numbers them (a forge run's place is its issue's)."""
        ids = [e.id for e in await self._queue()]
        return (ids.index(entry.id) + 1 if entry.id in ids else len(ids)), len(ids)


def _ask(req: Request) -> SpawnAsk:
    """Who asked for ``req``'s launch and where, as the queue keeps it."""
    flags = req.command.flags
    msg = req.message
    return SpawnAsk(
        agent=req.command.args.get("NAME", ""),  # a `task start`'s: its request's, when held
        command=msg.text,
        sender=msg.sender,
        connector=msg.connector,
        room=msg.room,
        reason="",
        request={key: flags[key] for key in sorted(flags)},
        thread=msg.thread_id,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _turn(req: Request) -> int | None:
    """The queue entry whose start ``req`` is (its event id ``queue:<id>``), if any."""
    head, _, tail = str(req.message.event_id).partition(":")
    return int(tail) if head == "queue" and tail.isdigit() else None
