"""The roster's own launches: ``autostart`` agents, and agents with ``restart: always``
that operators want running, started by the supervisor at start and after a roster reload.

A launch the concurrency caps turn away waits in the spawn queue (the gate keeps it). A
launch that fails — its CLI missing, no credentials, no sandbox here — is not only logged:
it becomes a :attr:`~fleet.events.EventKind.REFUSED` fleet event, which the app posts to
the agent's thread or the home rooms with the error, and the error names the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from fleet.errors import FleetError
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger
from fleet.model import AgentSpec, AgentState, DesiredState, RestartMode
from fleet.names import AgentName
from fleet.supervisor.status import LaunchGate, SpawnOutcome

log = logging.getLogger(__name__)

Spawn = Callable[[AgentName, str], Awaitable[SpawnOutcome]]
"""Launch an agent (its name, who launched it); raises :class:`FleetError` when it cannot."""


async def autostart(
    specs: Iterable[AgentSpec],
    *,
    reason: str,
    ledger: Ledger,
    gate: LaunchGate | None,
    spawn: Spawn,
    emit: Callable[[FleetEvent], Awaitable[None]],
) -> list[AgentName]:
    """Launch those of ``specs`` that should run and do not; the names started."""
    started: list[AgentName] = []
    for spec in specs:
        record = await ledger.agents.get_agent(spec.name)
        wanted = spec.autostart or (
            record is not None
            and record.desired is DesiredState.RUNNING
            and spec.restart.mode is RestartMode.ALWAYS
        )
        if not wanted or (record is not None and record.state.is_live):
            continue
        why = await gate.admit_launch(spec.name, reason) if gate is not None else None
        if why is not None:
            log.info("%s not started yet (%s): %s", spec.name, reason, why)
            continue
        try:
            outcome = await spawn(spec.name, reason)
        except FleetError as exc:
            log.error("could not start %s (%s): %s", spec.name, reason, exc)
            message = f"{reason}: {exc}"
            await emit(FleetEvent(spec.name, EventKind.REFUSED, AgentState.FAILED, message, False))
            continue
        finally:
            if gate is not None:
                gate.release(spec.name)
        if outcome.started:
            started.append(spec.name)
    return started
