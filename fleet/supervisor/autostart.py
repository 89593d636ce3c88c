"""The roster at work: a reloaded roster adopted (:func:`adopt`: what it added, removed
and changed), and the roster's own launches — ``autostart`` agents, and agents with
``restart: always`` that operators want running — started by the supervisor at start and
after a roster reload.

Each passes the admission (:class:`~fleet.supervisor.admission.admit.Admission`, origin
``autostart``: the budgets are not asked, their cutoffs hold it); one the concurrency caps
turn away waits in the spawn queue, as asked by ``autostart``. An agent working on a forge
issue is not launched: that run owns its branch and session until it ends. A launch that
fails — its CLI missing, no credentials, no sandbox here — is not only logged: it becomes
a :attr:`~fleet.events.EventKind.REFUSED` fleet event, which the app posts to
the agent's thread or the home rooms with the error, and the error names the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime

from fleet.errors import FleetError
from fleet.events import EventKind, FleetEvent
from fleet.ledger import QueuedSpawn, SpawnAsk
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.spawn_queue import SpawnQueueStore
from fleet.model import AgentSpec, AgentState, DesiredState, RestartMode
from fleet.names import AgentName
from fleet.supervisor.admission.admit import Admission, Wait
from fleet.supervisor.admission.held import held
from fleet.supervisor.admission.request import LaunchRequest, Started
from fleet.supervisor.status import RosterDiff

log = logging.getLogger(__name__)


async def autostart(
    specs: Iterable[AgentSpec],
    *,
    reason: str,
    agents: AgentsStore,
    forge: ForgeStore,
    spawn_queue: SpawnQueueStore,
    admission: Admission,
    emit: Callable[[FleetEvent], Awaitable[None]],
) -> list[AgentName]:
    """Launch those of ``specs`` that should run and do not; the names started."""
    started: list[AgentName] = []
    for spec in specs:
        record = await agents.get_agent(spec.name)
        wanted = spec.autostart or (
            record is not None
            and record.desired is DesiredState.RUNNING
            and spec.restart.mode is RestartMode.ALWAYS
        )
        if not wanted or (record is not None and record.state.is_live):
            continue
        working = await forge.agent_forge_run(spec.name)
        if working is not None:
            log.info("%s not started (%s): it works on #%d of %s (%s)", spec.name, reason,
                     working.issue, working.slug, working.state)  # fmt: skip
            continue
        request = LaunchRequest(spec.name, origin="autostart", by=reason, collect=False)
        try:
            admitted = await admission.admit(request, _waiter(spawn_queue, admission, reason))
        except FleetError as exc:
            log.error("could not start %s (%s): %s", spec.name, reason, exc)
            message = f"{reason}: {exc}"
            await emit(FleetEvent(spec.name, EventKind.REFUSED, AgentState.FAILED, message, False))
            continue
        if not isinstance(admitted, Started):
            log.info("%s not started yet (%s): %s", spec.name, reason, admitted.why)
        elif admitted.outcome.started:
            started.append(spec.name)
    return started


async def adopt(
    agents: AgentsStore,
    old: Mapping[AgentName, AgentSpec],
    roster: Mapping[AgentName, AgentSpec],
    start: Callable[[list[AgentSpec]], Awaitable[list[AgentName]]],
) -> RosterDiff:
    """``roster`` in place of ``old`` without touching running agents: written to the
    ledger, its new agents passed to ``start`` (the roster's own launches). Agents it drops
    are marked removed: they run on until stopped, never restarted."""
    await agents.sync_roster(roster)
    removed = tuple(sorted(old.keys() - roster.keys()))
    live = {record.name for record in await agents.list_agents() if record.state.is_live}
    changed = tuple(sorted(n for n in old.keys() & roster.keys() if old[n] != roster[n]))
    running = []
    for name in changed:
        record = await agents.get_agent(name)
        if record is not None and record.state.is_live:
            running.append(name)
        elif record is not None:
            await agents.upsert_agent(roster[name], record.desired)
    added = tuple(sorted(roster.keys() - old.keys()))
    started = await start([roster[n] for n in added])
    return RosterDiff(
        added=added,
        removed=removed,
        changed=changed,
        changed_running=tuple(running),
        started=tuple(started),
        removed_running=tuple(name for name in removed if name in live),
    )


def _waiter(spawn_queue: SpawnQueueStore, admission: Admission, reason: str) -> Wait:
    """The spawn queue, as the roster's own launch waits there: asked by ``reason``, from
    no room (told in the home rooms when it starts)."""

    async def wait(request: LaunchRequest, why: str, until: datetime | None) -> QueuedSpawn:
        assert admission.slots is not None  # only the caps hold a launch nobody typed
        ask = SpawnAsk(
            request.agent,
            f"spawn {request.agent}",
            reason,
            "",
            "",
            why,
            origin="autostart",
            launch=held(request),
        )
        return await spawn_queue.enqueue_spawn(ask, host=admission.slots.host)

    return wait
