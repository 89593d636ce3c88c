"""The dashboard's Tasks page, ``/api/tasks`` and the tasks in ``/metrics``: the register's
tasks by state, each with its projection kept when it was made beside what its runs really
used, and its missions' totals (:mod:`fleet.tasks.views`), read from the ledger's tasks,
missions and actuals stores.

A board shows every open task (the latest :data:`OPEN_SHOWN`) and the latest
:data:`ENDED_SHOWN` of each end, with how many there are; filtered by a mission, the tasks
of it and its sub-missions. Every text of a task — its title, body, why, branch, pull
request — was written by people, forge issues or agents: guarded as the other pages guard
such text (:class:`bot.dashboard.pages.shapes.Redacted`), escaped by the template, and only a plain
web address becomes a link."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

from bot.dashboard.pages.shapes import Json, Redacted, iso
from bot.dashboard.pages.stores import TaskStores
from bot.render.forge import web_address
from fleet.budgets.quoting.words import usd
from fleet.errors import FleetError
from fleet.ledger.records.tasks import (
    ENDED_STATES,
    OPEN_STATES,
    TASK_STATES,
    MissionRecord,
    Pair,
    TaskRecord,
    TaskState,
)
from fleet.ledger.stores.work.stages import StageRecord
from fleet.metering import units
from fleet.pipelines.schema import gate_shown
from fleet.tasks.views import TaskView, Totals, mission_view, totals, views
from fleet.timing.clock import Clock

OPEN_SHOWN = 500
"""Open tasks a board shows at most (the latest)."""
ENDED_SHOWN = 20
"""Tasks of each end (done, failed, cancelled) a board shows: the latest; the column says
how many there are."""
MISSION_TASKS = 2_000
"""The tasks of missions read for their totals at most (the latest)."""
OPEN_SUMMED = 2_000
"""The open tasks whose spend ``/metrics`` sums at most (the latest)."""
TEXT_CHARS = 500
"""Characters of a task's title, why, branch or pull request on their one line."""
MISSION_NAME_CHARS = 100
GAUGES_FRESH = timedelta(seconds=60)
"""How long ``/metrics`` reuses its reading of the tasks."""
TOPIC = "tasks"
"""The live topic of the whole board; a filtered one adds its query (``tasks?mission=x``)."""


class BadFilter(FleetError):
    """A board asked with a filter that names nothing: a 400 saying what to send."""


@dataclass(frozen=True, slots=True)
class Filter:
    """What a board shows: a mission's tasks (and its sub-missions'), tasks in a state."""

    mission: str | None = None
    state: TaskState | None = None

    @property
    def topic(self) -> str:
        """The live topic of this board."""
        query = {k: v for k, v in (("mission", self.mission), ("state", self.state)) if v}
        return f"{TOPIC}?{urlencode(query)}" if query else TOPIC


def task_filter(query: Mapping[str, str]) -> Filter:
    """``?mission=NAME&state=STATE`` read, or :class:`BadFilter` saying what was wrong."""
    mission = query.get("mission") or None
    state = query.get("state") or None
    if mission is not None and (
        len(mission) > MISSION_NAME_CHARS or not mission.isprintable() or mission != mission.strip()
    ):
        raise BadFilter(
            f"?mission= takes a mission's name (at most {MISSION_NAME_CHARS} characters, no "
            "blanks around it), e.g. ?mission=release; `mission new NAME` in chat makes one"
        )
    if state is not None and state not in TASK_STATES:
        raise BadFilter(f"?state= takes one of {', '.join(TASK_STATES)}, e.g. ?state=working")
    return Filter(mission, state)


def topic_filter(topic: str) -> Filter | None:
    """The board a live topic names, or ``None`` when it names none."""
    if topic == TOPIC:
        return Filter()
    if not topic.startswith(f"{TOPIC}?"):
        return None
    try:
        return task_filter(dict(parse_qsl(topic[len(TOPIC) + 1 :])))
    except BadFilter:
        return None


@dataclass(frozen=True, slots=True)
class TaskGauges:
    """The tasks ``/metrics`` reports: how many in each state, all time, and the open
    ones' projected medians and actual spend summed."""

    by_state: Mapping[TaskState, int]
    open_projected_usd: float
    open_actual_usd: float
    open_projected_tokens: float
    open_actual_tokens: int


def _pair(pair: Pair | None) -> list[float] | None:
    return None if pair is None else [round(pair[0], 6), round(pair[1], 6)]


def totals_json(t: Totals) -> Json:
    """What tasks add up to: their projections and actuals summed, and their progress."""
    return {
        "tasks": t.tasks,
        "progress": t.progress,
        "by_state": dict(t.by_state),
        "projected_tokens": _pair(t.projected_tokens),
        "projected_usd": _pair(t.projected_usd),
        "unprojected": t.unprojected,
        "actual_tokens": t.actual_tokens,
        "actual_usd": None if t.actual_usd is None else round(t.actual_usd, 6),
    }


class TaskBoard:
    """The Tasks page's data, the open tasks the fleet's JSON counts, and ``/metrics``'."""

    def __init__(
        self,
        stores: TaskStores,
        clock: Clock,
        redacted: Redacted,
        head: Callable[[], Json],
    ) -> None:
        """``stores``: the ledger's tasks, missions, actuals and pipelines' stages;
        ``head``: what every page's data starts with."""
        self._tasks, self._missions, self._actuals = stores.tasks, stores.missions, stores.actuals
        stages = stores.stages
        self._clock = clock
        self._redacted = redacted
        self._head = head
        self._stages = stages
        self._gauges: tuple[datetime, TaskGauges] | None = None

    async def open_counts(self) -> Json:
        """How many tasks are open, in each open state."""
        counts = await self._tasks.counts()
        return {state: n for state, n in counts.items() if state in OPEN_STATES}

    async def page(self, shown: Filter) -> Json:
        """The board ``shown`` asks for, or :class:`BadFilter` when its mission is none."""
        missions = await self._missions.missions()
        named = {m.id: m for m in missions}
        scope: list[MissionRecord] = missions
        chosen: MissionRecord | None = None
        if shown.mission is not None:
            chosen = next((m for m in missions if m.name == shown.mission), None)
            if chosen is None:
                raise BadFilter(self._no_mission(shown.mission, missions))
            scope = await self._missions.tree(chosen.id)
        ids = [m.id for m in scope]
        in_missions = await self._tasks.tasks(missions=ids, limit=MISSION_TASKS) if ids else []
        if chosen is not None:
            counts = await self._tasks.counts(missions=ids)
            board = _latest(in_missions, shown.state)
        else:
            counts = await self._tasks.counts()
            board = await self._board(shown.state)
        every = {t.id: t for t in [*in_missions, *board]}
        actuals = await self._actuals.actuals(list(every))  # one reading for every task shown
        found = views(every.values(), actuals)
        by_id = {v.task.id: v for v in found}
        stages = {} if self._stages is None else await self._stages.of_tasks(list(every))
        mission_views = [v for v in found if v.task.mission is not None]
        mission_json = [
            {
                "name": self._redacted.line(m.name, MISSION_NAME_CHARS),
                "title": self._redacted.line(m.title, TEXT_CHARS),
                "parent": None
                if m.parent is None or m.parent not in named
                else self._redacted.line(named[m.parent].name, MISSION_NAME_CHARS),
                "totals": totals_json(mission_view(m, scope, mission_views).totals),
            }
            for m in scope
        ]
        states = TASK_STATES if shown.state is None else (shown.state,)
        return {
            **self._head(),
            "mission": None if chosen is None else mission_json[0],
            "state": shown.state,
            "topic": shown.topic,
            "counts": {s: counts[s] for s in states},
            "ended_shown": ENDED_SHOWN,
            "tasks": [
                {**self._task_json(by_id[t.id], named), "stage": self._stage_json(stages.get(t.id))}
                for t in _ordered(board)
            ],
            "missions": mission_json,
        }

    async def _board(self, state: TaskState | None) -> list[TaskRecord]:
        """The open tasks and the latest of each end (or the latest of ``state``)."""
        if state is not None:
            return await self._tasks.tasks(states=(state,), limit=_shown(state))
        found = await self._tasks.tasks(states=OPEN_STATES, limit=OPEN_SHOWN)
        for end in ENDED_STATES:
            found.extend(await self._tasks.tasks(states=(end,), limit=ENDED_SHOWN))
        return found

    def _no_mission(self, name: str, missions: Sequence[MissionRecord]) -> str:
        said = f"no mission is called {self._redacted.line(name, MISSION_NAME_CHARS)!r}"
        if not missions:
            return f"{said}: there are no missions yet; `mission new NAME` in chat makes one"
        names = ", ".join(self._redacted.line(m.name, MISSION_NAME_CHARS) for m in missions[:8])
        return f"{said}; the missions are {names}{', …' if len(missions) > 8 else ''}"

    def _stage_json(self, stage: StageRecord | None) -> Json | None:
        """A pipeline's stage as its task's card shows it (``None``: no stage)."""
        if stage is None:
            return None
        line = self._redacted.line
        return {
            "pipeline": line(stage.pipeline),
            "name": line(stage.stage),
            "gate": line(gate_shown(stage.gate), TEXT_CHARS),
            "gate_state": stage.gate_state,
            "why": line(stage.why.split("\n", 1)[0], TEXT_CHARS),
        }

    def _task_json(self, view: TaskView, missions: Mapping[int, MissionRecord]) -> Json:
        task, actual, line = view.task, view.actual, self._redacted.line
        projection = task.projection
        mission = missions.get(task.mission) if task.mission is not None else None
        return {
            "id": task.id,
            "name": line(task.name),
            "title": line(task.title, TEXT_CHARS),
            "body": self._redacted(task.body),
            "source": task.source,
            "source_ref": line(task.source_ref, TEXT_CHARS),
            "mission": None if mission is None else line(mission.name, MISSION_NAME_CHARS),
            "agent": None if task.agent is None else line(task.agent),
            "runtime": None if task.runtime is None else line(task.runtime),
            "repo": None if task.repo is None else line(task.repo),
            "state": task.state,
            "why": line(task.why, TEXT_CHARS),
            "asked_by": line(task.asked_by),
            "branch": None if task.branch is None else line(task.branch, TEXT_CHARS),
            "pull": None if task.pull_url is None else line(task.pull_url, TEXT_CHARS),
            "pull_url": web_address(task.pull_url),
            "runs": list(task.runs),
            "after": list(task.after),
            "created_at": iso(task.created_at),
            "updated_at": iso(task.updated_at),
            "started_at": iso(task.started_at),
            "ended_at": iso(task.ended_at),
            "projection": {
                "basis": line(projection.basis, TEXT_CHARS),
                "tasks": projection.count,
                "from_tasks": list(projection.tasks),
                "tokens": _pair(projection.tokens),
                "usd": _pair(projection.usd),
            },
            "actual": {
                "tokens": actual.tokens,
                "usd": None if actual.usd is None else round(actual.usd, 6),
                "runs": actual.runs,
            },
        }

    async def gauges(self) -> TaskGauges:
        """The tasks for ``/metrics``, read at most once per :data:`GAUGES_FRESH` (a
        scrape every few seconds does not read the register each time)."""
        now = self._clock.now()
        if self._gauges is not None and now - self._gauges[0] < GAUGES_FRESH:
            return self._gauges[1]
        counts = await self._tasks.counts()
        open_tasks = await self._tasks.tasks(states=OPEN_STATES, limit=OPEN_SUMMED)
        summed = totals(views(open_tasks, await self._actuals.actuals([t.id for t in open_tasks])))
        found = TaskGauges(
            by_state=counts,
            open_projected_usd=0.0 if summed.projected_usd is None else summed.projected_usd[0],
            open_actual_usd=summed.actual_usd or 0.0,
            open_projected_tokens=0.0
            if summed.projected_tokens is None
            else summed.projected_tokens[0],
            open_actual_tokens=summed.actual_tokens,
        )
        self._gauges = (now, found)
        return found


def _shown(state: TaskState) -> int:
    return ENDED_SHOWN if state in ENDED_STATES else OPEN_SHOWN


def _latest(tasks: Sequence[TaskRecord], state: TaskState | None) -> list[TaskRecord]:
    """``tasks`` (oldest first) as a board shows them: in ``state`` if given, each state's
    latest as many as a board shows of it."""
    found: list[TaskRecord] = []
    for each in TASK_STATES if state is None else (state,):
        found.extend([t for t in tasks if t.state == each][-_shown(each) :])
    return found


def _ordered(tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
    """By state in the board's order; open ones oldest first (as they came), ended ones
    newest first."""
    order = {state: i for i, state in enumerate(TASK_STATES)}
    return sorted(tasks, key=lambda t: (order[t.state], -t.id if t.state in ENDED_STATES else t.id))


def _tokens(value: float) -> str:
    return units.tokens_words(value)


def spend_words(task: Json) -> str:
    """A card's spend: ``projected $0.50 (p90 $0.80) · actual $0.31``; in tokens where the
    projection has no dollars (``projected 9,000 tokens (p90 12,000) · actual 4,333
    tokens``); ``no projection: <basis>`` where it has neither."""
    projection, actual = task["projection"], task["actual"]
    said = f"no projection: {projection['basis']}"
    return _words(projection["usd"], projection["tokens"], said, actual["usd"], actual["tokens"])


def totals_words(sums: Json) -> str:
    """A mission's spend, its tasks' summed as :func:`spend_words` says one task's."""
    said = "no projection"
    if sums["unprojected"] and (sums["projected_usd"] or sums["projected_tokens"]):
        said = f"{sums['unprojected']} without a projection"
    words = _words(
        sums["projected_usd"], sums["projected_tokens"], said, sums["actual_usd"],
        sums["actual_tokens"],
    )  # fmt: skip
    if said != "no projection":
        return words.replace(" · ", f" ({said}) · ", 1)
    return words


def _words(
    usd_pair: list[float] | None,
    tokens_pair: list[float] | None,
    none_said: str,
    actual_usd: float | None,
    actual_tokens: int,
) -> str:
    if usd_pair is not None:
        said = f"projected {usd(usd_pair[0])} (p90 {usd(usd_pair[1])})"
    elif tokens_pair is not None:
        said = f"projected {_tokens(tokens_pair[0])} (p90 {units.tokens(tokens_pair[1])})"
    else:
        said = none_said
    if actual_usd is not None:
        spent = usd(actual_usd)
    elif usd_pair is not None:
        spent = usd(0.0) if actual_tokens == 0 else f"{_tokens(actual_tokens)}, no price"
    else:
        spent = _tokens(actual_tokens)
    return f"{said} · actual {spent}"
