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

import re
from collections.abc import Collection
from typing import Final, Protocol

from fleet.names import is_agent_name
from fleet.supervisor.admission.request import LaunchRequest, Origin, Refused
from fleet.supervisor.admission.stages.chain import Admitting, Verdict

_DIGITS = re.compile(r"\d+")
_PARTS = re.compile(r"[-_.]")

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

    async def meant(self, request: LaunchRequest) -> str | None:
        """The known agent ``request`` likely meant (``None``: it names one the fleet knows,
        says a new one is meant, is close to no name, was not typed, or is no agent's name
        at all, which the launch refuses in its own words)."""
        names, agent = self.names, request.agent
        if names is None or request.new or request.origin not in TYPED:
            return None
        if not is_agent_name(agent) or await names.knows(agent):
            return None
        return likely_meant(agent, await names.names())

    async def stranger(self, request: LaunchRequest) -> str | None:
        """Why ``request`` names an agent likely meant to be another (``None``: see
        :meth:`meant`)."""
        agent = request.agent
        guess = await self.meant(request)
        if guess is None:
            return None
        return (
            f"no agent is called {agent!r} — did you mean {guess!r}? Nothing was started; "
            f"`spawn {agent} --new` starts a new agent of that name"
        )


def likely_meant(typed: str, known: Collection[str]) -> str | None:
    """The known name ``typed`` is likely a slip of, or ``None``: one edit away (a letter
    left out, added, changed or two swapped: ``codr``, ``dmo``, ``nightyl``), two for a name
    of eight letters or more, and never for a name under four (``a1`` beside ``b1``). Names
    told apart on purpose are no slips: numbered or lettered siblings (``worker-2`` beside
    ``worker-1``, ``coder2`` beside ``coder``, ``coder-b`` beside ``coder-a``) and a name
    with a part of its own added (``coder-docs``, ``old-coder``)."""
    lowered = typed.lower()
    for name in known:
        if name.lower() == lowered:
            return name
    best: tuple[int, str] | None = None
    for name in sorted(known):
        if len(name) < 4 or _siblings(lowered, name.lower()):
            continue
        distance = _edits(lowered, name.lower(), 2)
        if distance <= (2 if len(name) >= 8 else 1) and (best is None or distance < best[0]):
            best = (distance, name)
    return None if best is None else best[1]


def _siblings(typed: str, name: str) -> bool:
    """Whether two names differ only in their numbers, or one is the other with parts of
    its own added (split at ``-``, ``_`` and ``.``)."""
    if _DIGITS.sub("", typed).strip("-_.") == _DIGITS.sub("", name).strip("-_."):
        return True
    mine, theirs = _PARTS.split(typed), _PARTS.split(name)
    shorter, longer = sorted((mine, theirs), key=len)
    if len(shorter) == len(longer):  # lettered siblings: coder-a beside coder-b
        differ = [(a, b) for a, b in zip(mine, theirs, strict=True) if a != b]
        return len(mine) > 1 and len(differ) == 1 and max(map(len, differ[0])) == 1
    return any(
        longer[start : start + len(shorter)] == shorter
        for start in range(len(longer) - len(shorter) + 1)
    )


def _edits(a: str, b: str, most: int) -> int:
    """The edits (insert, delete, change, swap of two neighbours) from ``a`` to ``b``, or
    ``most + 1`` once more than ``most`` (optimal string alignment)."""
    if abs(len(a) - len(b)) > most:
        return most + 1
    before: list[int] | None = None
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return min(row[-1], most + 1)
