"""What a run's launch and its end both work with (:class:`RunHands`): the ledger's agents
and runs, the backends, where and how a run is placed, its tokens, the supervisor's
settings, the repositories, the live sessions and who hears of it. The run keeper
(:class:`~fleet.runs.keeper.RunKeeper`) makes one and hands it to its launches
(:class:`~fleet.runs.starting.RunStarter`) and its ends
(:class:`~fleet.runs.ending.RunEnds`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleet.backends.base import Backend
from fleet.errors import FleetError
from fleet.events import Listener
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.repos.service import Repos
from fleet.runs.launch.context import RunContexts
from fleet.runs.launch.launch_kit import FleetSettings
from fleet.runs.launch.launch_site import LaunchSite
from fleet.runs.launch.run_tokens import RunTokens
from fleet.sessions.hooks import SessionHooks


def backend_named(backends: Mapping[str, Backend], name: str) -> Backend:
    """Backend ``name`` of ``backends``; :class:`FleetError` naming the known ones."""
    try:
        return backends[name]
    except KeyError:
        raise FleetError(f"unknown backend {name!r}; known: {', '.join(backends)}") from None


@dataclass(frozen=True, slots=True)
class RunHands:
    """The collaborators of every run's launch and end. ``repos``: the repositories agents
    work on (``None``: none configured); ``sessions``: what drives the runs that speak a
    session."""

    agents: AgentsStore
    runs: RunsStore
    emit: Listener
    backends: Mapping[str, Backend]
    contexts: RunContexts
    site: LaunchSite
    tokens: RunTokens
    settings: FleetSettings
    repos: Repos | None = None
    sessions: SessionHooks | None = None

    def backend(self, name: str) -> Backend:
        """Backend ``name`` (:func:`backend_named`)."""
        return backend_named(self.backends, name)
