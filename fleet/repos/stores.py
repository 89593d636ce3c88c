"""The ledger's stores the repositories read and write: runs' lines, the agents, forge runs
and what the git door refused."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.refusals import RefusalsStore


@dataclass(frozen=True, slots=True)
class RepoStores:
    """What :class:`fleet.repos.service.Repos` keeps in the ledger."""

    lines: LinesStore
    """Runs' branches and checkouts, and the change each run made."""
    agents: AgentsStore
    """The agents, for their repository and the names lines may take."""
    forge: ForgeStore
    """Forge runs, whose pull requests end lines."""
    refusals: RefusalsStore
    """Pushes and fetches the git door refused."""
