"""The ledger's stores the fleet reads and writes: its agents and their runs, heartbeats,
usage, pauses, lines, refusals, forge runs and the spawns waiting for room."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.ledger.stores.agents import AgentsStore
from fleet.ledger.stores.budgets import BudgetsStore
from fleet.ledger.stores.forge import ForgeStore
from fleet.ledger.stores.heartbeats import HeartbeatsStore
from fleet.ledger.stores.lines import LinesStore
from fleet.ledger.stores.metering import MeteringStore
from fleet.ledger.stores.refusals import RefusalsStore
from fleet.ledger.stores.runs import RunsStore
from fleet.ledger.stores.spawn_queue import SpawnQueueStore


@dataclass(frozen=True, slots=True)
class FleetStores:
    """What :class:`fleet.supervisor.fleet.Fleet` keeps in the ledger."""

    agents: AgentsStore
    """The agents: desired and observed states, the roster's marks."""
    runs: RunsStore
    """Runs and their reports."""
    heartbeats: HeartbeatsStore
    """What the agents' runs said last, and when."""
    metering: MeteringStore
    """Usage, for the listing and the runs' stories."""
    budgets: BudgetsStore
    """Pauses (freezes) set on agents."""
    lines: LinesStore
    """The change each run made, for its story."""
    refusals: RefusalsStore
    """Egress refused, for the listing."""
    forge: ForgeStore
    """Forge runs: an agent working on an issue is not autostarted."""
    spawn_queue: SpawnQueueStore
    """Where the roster's own launches wait for room."""
