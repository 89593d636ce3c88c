"""The records ``spawn``'s handlers are built with, each bundling the collaborators of one
idea: :class:`Launching` (the path a launch takes) and :class:`SpawnRepos` (the
repositories it works on, and who asks in git). The requests themselves are built in
:mod:`bot.commands.handlers.agents.spawn.requests`."""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands.handlers.agents.spawn.spend import SpawnSpend
from bot.commands.handlers.places.repos import CoAuthors
from bot.commands.routing.request import SpawnGate
from fleet.repos.desk import RepoDesk
from fleet.supervisor.admission.admit import Admission


def _nobody(connector: str, sender: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Launching:
    """The path a spawn's launch takes. ``admission``: what every ``spawn`` passes —
    budgets, fallback, deferral, the concurrency caps; nothing starts an agent around it.
    ``gate``: the spawn queue a launch waits in, and the caps a ``restart`` must fit.
    ``spend``: a spawn's cap on its run, and what a run usually costs."""

    admission: Admission
    gate: SpawnGate | None = None
    spend: SpawnSpend | None = None


@dataclass(frozen=True, slots=True)
class SpawnRepos:
    """The repositories ``spawn --repo`` works on, and who an operator is in git
    (``co_authors``), for the commits on the branches they ask for."""

    desk: RepoDesk
    co_authors: CoAuthors = _nobody
