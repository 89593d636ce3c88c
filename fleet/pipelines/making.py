"""A mission made from one of the config's pipelines: the mission, one task per stage —
each waiting for the stages it comes after, done by the roster's agent (or role) the stage
names, its start asked where the mission was made — and the stages recorded with their
gates. Starting the first stages is the flow's (:meth:`fleet.pipelines.flow.Pipelines.make`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from fleet.ledger.records.tasks import MissionRecord, NewTask, TaskRecord, TaskSource
from fleet.ledger.stores.work.stages import NewStage, StagesStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.model import AgentSpec
from fleet.pipelines.schema import PipelineEntry, gate_of, no_pipeline, ordered
from fleet.tasks.register import Register, TaskError


@dataclass(frozen=True, slots=True)
class Made:
    """A mission made from a pipeline: it, and its stages' tasks in order."""

    mission: MissionRecord
    stages: tuple[tuple[str, TaskRecord], ...]
    started: tuple[str, ...]
    """The stages that wait for none: those to start now."""


class Making:
    """Makes missions from the config's pipelines (``pipelines``, as of now) over the
    register, with the roster's agents (``roster``, as of now)."""

    def __init__(
        self,
        register: Register,
        tasks: TasksStore,
        stages: StagesStore,
        pipelines: Callable[[], Mapping[str, PipelineEntry]],
        roster: Callable[[], Sequence[AgentSpec]],
    ) -> None:
        self._register = register
        self._tasks = tasks
        self._stages = stages
        self._pipelines = pipelines
        self._roster = roster

    async def make(
        self,
        name: str,
        pipeline: str,
        title: str,
        *,
        by: str,
        source: TaskSource,
        asked_in: Mapping[str, str | None],
    ) -> Made:
        """Make mission ``name`` from ``pipeline``: a task per stage, each to start where
        ``asked_in`` says, as ``by``; nothing started yet."""
        every = self._pipelines()
        found = every.get(pipeline)
        if found is None:
            raise TaskError(no_pipeline(pipeline, every))
        edges = found.edges()
        order = ordered(edges)
        if order is None:  # the config's checks refuse it; a reload may not have
            raise TaskError(f"pipeline {pipeline}'s stages wait for each other in a loop")
        roster = self._roster()
        doers = {stage: doer_of(pipeline, stage, found, roster) for stage in order}
        mission = await self._register.new_mission(name, title or f"pipeline {pipeline}", by)
        made: dict[str, TaskRecord] = {}
        where = json.dumps(dict(asked_in), sort_keys=True)
        for stage in order:
            spec = doers[stage]
            new = NewTask(
                title=f"{stage}: {title or pipeline}",
                source=source,
                asked_by=by,
                mission=mission.id,
                agent=spec.name,
                runtime=spec.runtime,
            )
            task = await self._register.new(new, [made[a] for a in edges[stage]])
            await self._tasks.set_fields(task.id, asked_in=where)
            made[stage] = await self._tasks.task(task.id) or task  # with where it was asked
        await self._stages.add_stages(
            mission.id,
            [NewStage(made[s].id, pipeline, s, *gate_of(found, s)) for s in order],
        )
        first = tuple(stage for stage in order if not edges[stage])
        return Made(mission, tuple((s, made[s]) for s in order), first)


def doer_of(
    pipeline: str, stage: str, found: PipelineEntry, roster: Sequence[AgentSpec]
) -> AgentSpec:
    """The roster's agent that does ``stage`` of ``pipeline``: the agent it names, or the
    first of the role it names."""
    entry = found.stages[stage]
    for spec in roster:
        if (entry.agent is not None and spec.name == entry.agent) or (
            entry.role is not None and spec.role == entry.role
        ):
            return spec
    raise TaskError(
        f"stage {stage} of pipeline {pipeline} is done by {entry.doer}, which the roster "
        "has not now: add it (`roster`), or change the pipeline in the config"
    )
