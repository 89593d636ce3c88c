"""The ledger's stores the fleet reads and writes: its agents and their runs, heartbeats,
usage, pauses, lines, refusals, forge runs and the spawns waiting for room."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.heartbeats import HeartbeatsStore
from fleet.ledger.stores.running.refusals import RefusalsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.running.spawn_queue import SpawnQueueStore
from fleet.ledger.stores.spend.budgets import BudgetsStore
from fleet.ledger.stores.spend.metering import MeteringStore


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
