"""The admission as an ordered chain of stages, one request through them all: each stage
reads the launch in flight (:class:`Admitting`), may move it (the budgets' fallback) or
note what it took for it (a quote's hold, a cap's slot), and answers go on (``None``),
:class:`Queued` or :class:`Refused`. The chain is complete or it is not built:
:func:`chained` refuses one that misses a stage of :data:`ORDER` or has them out of order,
naming it — a launch never passes a stage that was forgotten."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from fleet.budgets.quoting.holds import Taken
from fleet.ledger import QueuedSpawn
from fleet.ledger.records.quotes import Quote
from fleet.supervisor.admission.request import LaunchRequest, Queued, Refused

Wait = Callable[[LaunchRequest, str, datetime | None], Awaitable[QueuedSpawn]]
"""Write a launch to the spawn queue: the request, why it waits, not before when."""

Verdict = Queued | Refused | None
"""A stage's answer: the launch waits, is refused, or goes on to the next stage (``None``)."""

ORDER: Final = ("naming", "ownership", "handoff", "budgets", "quote", "caps")
"""The stages every admission has, in their order: whether the name is one the fleet knows
(or a likely typo of one), whose the agent is (a forge issue's, a live run's), whether a
watchdog restart may go on with a task another agent handed on, the budgets (and their
fallback and deferral), the launch's quote and the holds it takes, the concurrency caps."""


class MissingStage(RuntimeError):
    """An admission built without one of its stages: a start-up error, never an open door."""


@dataclass(slots=True)
class Admitting:
    """One launch on its way through the stages: ``request`` as it will start (the budgets'
    fallback may move it); ``wait``: where it may wait (``None``: it may not, and a stage
    that would queue it refuses it); ``fallback``: the words saying it moved to its
    fallback; ``quote`` and ``taken``: its quote and the hold it took against the budgets;
    ``slot``: it holds a cap's slot until its launch returns; ``turn``: the spawn queue's
    entry this launch is the start of (``None``: not the queue's start)."""

    request: LaunchRequest
    wait: Wait | None
    turn: int | None = None
    fallback: str = ""
    quote: Quote | None = None
    taken: Taken | None = None
    slot: bool = False


class Stage(Protocol):
    """One question of the admission (its ``name`` one of :data:`ORDER`)."""

    name: str

    async def admit(self, admitting: Admitting) -> Verdict:
        """Go on (``None``), or say the launch waits or is refused, and why."""
        ...


def chained(stages: Sequence[Stage]) -> tuple[Stage, ...]:
    """``stages`` as the admission's chain, each of :data:`ORDER` once and in its order;
    :class:`MissingStage` naming the first one missing or out of place."""
    names = [stage.name for stage in stages]
    for i, name in enumerate(ORDER):
        if i >= len(names) or names[i] != name:
            found = ", ".join(names) or "none"
            raise MissingStage(
                f"the admission has no {name} stage in its place (stages: {found}; "
                f"every admission has {', '.join(ORDER)}, in that order)"
            )
    if len(names) > len(ORDER):
        raise MissingStage(f"the admission has stages it does not know: {names[len(ORDER) :]}")
    return tuple(stages)
