"""The name's stage: a launch of a name the fleet does not know — no roster entry, never
run — that is close to one it does (``codr`` beside ``coder``) is refused as a likely typo,
naming the agent likely meant, so a slip of the keyboard never starts a stranger off the
roster's repository, review and settings. A new agent of that name starts when the launch
says one is meant (``new``: ``spawn NAME --new``); a name close to none starts as an ad hoc
agent, as it always has.

The rule holds where a person or an agent typed the name (:data:`TYPED`: chat and the
shell, schedules, tasks handed on, peers' wakes), in the admission so each is held to it
alike; names the fleet makes itself (the roster's autostart, forge runs, reviews) and
restarts (their agent has run) go on. ``spawn`` asks it (:meth:`NamingStage.stranger`)
before it opens a task, so a typo leaves nothing behind."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Protocol

from fleet.schema import did_you_mean
from fleet.supervisor.admission.request import LaunchRequest, Origin, Refused
from fleet.supervisor.admission.stages.chain import Admitting, Verdict

TYPED: Final[frozenset[Origin]] = frozenset({"chat", "schedule", "task", "peer"})
"""The launches whose agent's name someone typed."""


class Names(Protocol):
    """The agents the fleet knows (:class:`fleet.supervisor.launcher.Launcher`)."""

    async def knows(self, name: str) -> bool:
        """Whether ``name`` is in the roster or has run (and was not forgotten)."""
        ...

    async def names(self) -> Collection[str]:
        """Every name the roster and the ledger know."""
        ...


class NamingStage:
    """A stranger's launch refused. ``names``: ``None`` where no fleet is kept (every
    launch goes on)."""

    name = "naming"

    def __init__(self, names: Names | None) -> None:
        self.names = names

    async def admit(self, admitting: Admitting) -> Verdict:
        why = await self.stranger(admitting.request)
        return None if why is None else Refused(why)

    async def stranger(self, request: LaunchRequest) -> str | None:
        """Why ``request`` names an agent likely meant to be another (``None``: it names
        one the fleet knows, says a new one is meant, is close to no name, or was not
        typed)."""
        names, agent = self.names, request.agent
        if names is None or request.new or request.origin not in TYPED:
            return None
        if await names.knows(agent):
            return None
        guess = did_you_mean(agent, sorted(await names.names()))
        if guess is None:
            return None
        return (
            f"no agent is called {agent!r} — did you mean {guess!r}? Nothing was started; "
            f"`spawn {agent} --new` starts a new agent of that name"
        )
