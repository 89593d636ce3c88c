"""A fake supervisor's side of a launch: what a :class:`LaunchRequest` asks of the run it
starts, as the keywords the supervisor's launch once took (``name`` and ``asked`` too), so a
fake records and a test reads the launch as before."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

from fleet.agents.current import CurrentRoster
from fleet.backends.process import SubprocessBackend
from fleet.budgets.quoting.holds import Holds
from fleet.budgets.quoting.service import Quoting
from fleet.events import Listeners
from fleet.ledger import Ledger
from fleet.mcp.config.rules import McpRules
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.supervisor.admission.admit import Admission, Launches, SpawnBudgets, TaskBinding
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.admission.stages.budgets import BudgetStage
from fleet.supervisor.admission.stages.caps import CapStage
from fleet.supervisor.admission.stages.handoff import HandedOn, HandoffStage
from fleet.supervisor.admission.stages.naming import Names, NamingStage
from fleet.supervisor.admission.stages.ownership import Owners, OwnershipStage
from fleet.supervisor.admission.stages.quote import QuoteStage
from fleet.supervisor.fleet import Fleet
from fleet.supervisor.launcher import Launcher
from fleet.supervisor.stores import FleetStores
from fleet.timing.clock import Clock

_KEPT = (
    *("runtime", "model", "prompt", "workdir", "account", "permissions", "run_budget"),
    *("host", "by", "collect", "repo", "repo_base", "resume"),
)


def given_of(request: LaunchRequest) -> dict[str, Any]:
    """``request`` as the launch's keywords: its agent as ``name``, its line's ask as
    ``asked``."""
    given = {key: getattr(request, key) for key in _KEPT}
    return {"name": request.agent, **given, "asked": request.asked()}


def unguarded(launcher: Launcher) -> Admission:
    """An admission over ``launcher`` with no budgets configured, no quotes and no caps
    kept: a test's explicit choice (the app's admission always has every stage wired)."""
    return an_admission(launcher, slots=None, budgets=None)


def an_admission(
    fleet: Launches,
    *,
    slots: Slots | None,
    budgets: SpawnBudgets | None,
    quoting: Quoting | None = None,
    holds: Holds | None = None,
    tasks: TaskBinding | None = None,
    owners: Owners | None = None,
    handed: HandedOn | None = None,
    names: Names | None = None,
) -> Admission:
    """An admission over ``fleet`` with every stage of the chain, each over the part given
    (``None``: that part is not kept, and its stage lets every launch on), in the order the
    app's fleet phase makes them."""
    stages = [
        NamingStage(names),
        OwnershipStage(owners, slots),
        HandoffStage(handed),
        BudgetStage(budgets, fleet, slots),
        QuoteStage(fleet, quoting, holds, slots),
        CapStage(slots),
    ]
    return Admission(fleet=fleet, stages=stages, tasks=tasks)


def fleet_and_admission(
    *,
    stores: FleetStores,
    clock: Clock,
    kit: LaunchKit,
    admission: Callable[[Launcher], Admission] = unguarded,
    roster: Mapping[AgentName, AgentSpec] | None = None,
    mcp: McpRules | None = None,
) -> tuple[Fleet, Admission]:
    """A real supervisor wired as the app wires it — the launcher first, ``admission`` over
    it, the fleet handed both — and that admission. ``mcp``: what the config allows a
    launch on MCP servers and skills (``None``: no server, no default grant or skill)."""
    current = CurrentRoster(roster, mcp)
    launcher = Launcher(stores=stores, clock=clock, kit=kit, roster=current, events=Listeners())
    admitting = admission(launcher)
    return Fleet(launcher=launcher, admission=admitting), admitting


def real_fleet(
    *,
    stores: FleetStores,
    clock: Clock,
    kit: LaunchKit,
    admission: Callable[[Launcher], Admission] = unguarded,
    roster: Mapping[AgentName, AgentSpec] | None = None,
    mcp: McpRules | None = None,
) -> Fleet:
    """A real supervisor over ``admission`` (:func:`fleet_and_admission`)."""
    return fleet_and_admission(
        stores=stores, clock=clock, kit=kit, admission=admission, roster=roster, mcp=mcp
    )[0]


async def reap_open_runs(ledger: Ledger, backend: SubprocessBackend) -> None:
    """Every run the ledger still has open killed (its whole process group) and waited for,
    so a test that stopped its fleet leaves no process behind."""
    for run in await ledger.runs.open_runs():
        if backend.is_alive(run.handle):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.handle.pgid, signal.SIGKILL)
        async with asyncio.timeout(10):
            await backend.wait(run.handle)
