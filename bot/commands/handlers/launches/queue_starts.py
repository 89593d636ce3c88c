"""How a queued launch that came from chat (or from the roster itself) starts when its turn
comes, and is told: :class:`ChatStarts` starts a chat ``spawn``'s entry as its sender — the
ACL as of now — in its room, audited and claimed as ``queue:<id>``, and answers there as
a typed ``spawn`` is; :class:`RosterStarts` starts an ``autostart`` entry and tells the
home rooms and the agent's threads. Both are the spawn queue's listeners
(:class:`~fleet.supervisor.admission.queue.Listener`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.commands.routing.request import Reply, Request
from bot.commands.routing.router import Router
from bot.commands.routing.sources import Delegated
from bot.text.agent_text import quotes_escaped
from connectors.base import Connector, RoomId, UserId
from fleet.errors import FleetError
from fleet.ledger import QueuedSpawn
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.notices import Notice, NoticeBoard, Tone
from fleet.supervisor.admission.held import request_of
from fleet.supervisor.admission.queue import Launch
from fleet.supervisor.admission.request import LaunchRequest, Started
from fleet.timing.clock import Clock

QueuedSpawner = Callable[[Request, LaunchRequest | None, Launch], Awaitable[Reply]]
"""``spawn`` as a queued entry starts: the request the entry holds (``None``: an entry
written before requests were held, read as the command it keeps says), launched through
the given launch; the reply, as a typed ``spawn`` answers."""


class ChatStarts:
    """The queued launches asked for in chat, started as their sender in their room."""

    def __init__(
        self,
        clock: Clock,
        router: Router,
        connector_named: Callable[[str], Connector | None],
        spawner: QueuedSpawner,
    ) -> None:
        """Where entries start: the router (as their sender), the running connectors, and
        ``spawn`` as it starts a held request."""
        self._clock = clock
        self._router = router
        self._connector_named = connector_named
        self._spawner = spawner

    def ready(self, entry: QueuedSpawn) -> bool:
        """Whether ``entry``'s connector runs (else it waits for it)."""
        return self._connector_named(entry.connector) is not None

    async def start(self, entry: QueuedSpawn, launch: Launch) -> None:
        """Start ``entry`` as its sender — who must still be let change the fleet (the
        router checks the ACL as of now) — and answer in its room."""
        connector, router, spawner = self._connector_named(entry.connector), self._router, \
            self._spawner  # fmt: skip
        if connector is None:
            return

        async def act(req: Request) -> Reply:
            return await spawner(req, request_of(entry), launch)

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
        await router.run_as(connector, run, act)


class RosterStarts:
    """The roster's own launches (``autostart``) that waited, started and told."""

    def __init__(self, *, forge: ForgeStore, notices: NoticeBoard | None) -> None:
        self._forge = forge
        self._notices = notices

    def ready(self, entry: QueuedSpawn) -> bool:
        return True

    async def start(self, entry: QueuedSpawn, launch: Launch) -> None:
        """Start a roster launch nobody typed and tell the home rooms and the agent's
        threads."""
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
            admitted = await launch(request)
            if not isinstance(admitted, Started):  # never: the caps let it start
                raise FleetError(admitted.why)
            text = f"{head} started, pid {admitted.outcome.status.pid}."
        except FleetError as exc:
            text, tone = f"{head} could not start: {quotes_escaped(str(exc))}", "error"
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
