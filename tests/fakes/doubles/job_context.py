"""A :class:`~scheduler.context.JobContext` for tests: the parts a test gives, and for the
rest a stand-in that fails loudly if a job reaches for it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from fleet.notices import Delivery, Notice
from scheduler.context import JobContext, Pacing, Waiting
from scheduler.jobs import FleetScheduler


class Unused:
    """A part of the context this test did not give: any use of it is a test failure."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"the job used ctx.{self._name}.{attribute}, which this test lacks")


def job_context(**parts: Any) -> JobContext:
    """A context with ``parts`` (``fleet=...``, ``notices=...``, and the groups' own:
    ``budgets=...``, ``queue=...``) and :class:`Unused` for the others; ``scheduler``
    defaults to a new, unstarted one."""
    given: dict[str, Any] = {"scheduler": FleetScheduler()}
    given.update(parts)
    for group, kind in (("pacing", Pacing), ("waiting", Waiting)):
        if group not in given:
            given[group] = kind(**_filled(kind, given))
    for f in dataclasses.fields(JobContext):
        given.setdefault(f.name, Unused(f.name))
    return JobContext(**given)


def _filled(kind: Any, given: dict[str, Any]) -> dict[str, Any]:
    """``kind``'s fields taken out of ``given``, an :class:`Unused` for each one missing."""
    return {f.name: given.pop(f.name, Unused(f.name)) for f in dataclasses.fields(kind)}


@dataclass
class RecordingBoard:
    """A notice board that keeps what was posted; ``failing`` connectors are reported as
    failed, as the real notifier reports a connector that refused."""

    posted: list[Notice] = field(default_factory=list)
    failing: tuple[str, ...] = ()

    async def post(self, notice: Notice) -> Delivery:
        self.posted.append(notice)
        return Delivery(tuple(f"{name}: refused" for name in self.failing))
