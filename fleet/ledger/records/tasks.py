"""Tasks and missions as the ledger keeps them (``tasks``, ``missions``, ``task_runs``,
``task_waits``, migration 28): what a piece of work is for, where it came from, its state,
its runs and line, its projection kept when it was made, and what it really cost. How a
projection is reckoned and a task moves is :mod:`fleet.tasks`'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

TaskState = Literal["todo", "queued", "working", "review", "done", "failed", "cancelled"]
TASK_STATES: tuple[TaskState, ...] = (
    "todo",
    "queued",
    "working",
    "review",
    "done",
    "failed",
    "cancelled",
)
"""Every state, in the board's order: made, waiting for a slot or another task, a run
going, waiting for someone's review, and the three ends."""
OPEN_STATES: frozenset[TaskState] = frozenset({"todo", "queued", "working", "review"})
ENDED_STATES: frozenset[TaskState] = frozenset({"done", "failed", "cancelled"})

TaskSource = Literal["chat", "forge", "schedule", "task", "autostart"]
TASK_SOURCES: tuple[TaskSource, ...] = ("chat", "forge", "schedule", "task", "autostart")
"""Where a task came from: an operator in chat, a forge issue, an operator's schedule,
another task, the roster's own launch."""

Pair = tuple[float, float]
"""A median and a p90."""


@dataclass(frozen=True, slots=True)
class Projection:
    """What a task was expected to cost when it was made: from the finished tasks of the
    kind ``basis`` names in words (``agent coder · runtime claude · repository app``), whose
    ids are ``tasks`` (newest first); ``tokens`` and ``usd`` a median and a p90 each
    (``None``: no history in that unit)."""

    basis: str
    tasks: tuple[int, ...]
    tokens: Pair | None
    usd: Pair | None

    @property
    def count(self) -> int:
        """How many past tasks it was reckoned from."""
        return len(self.tasks)


NO_PROJECTION = Projection("no finished task yet", (), None, None)


@dataclass(frozen=True, slots=True)
class Actual:
    """What a task's runs really used, from the usage metered while each ran: ``tokens``
    exact, ``usd`` over its priced requests (``None``: none was priced)."""

    tokens: int
    usd: float | None
    runs: int


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task as the ledger keeps it. ``mission``: its mission's id; ``after``: the tasks
    it waits for; ``runs``: its runs' ids, oldest first; ``forge_run``: the forge run it
    is, when a forge issue made it; ``finished``: what it cost, written when it ended, and
    ``error`` (``finished`` / projected median, in ``error_unit``) when it had both;
    ``asked_in``: where its start was asked for in chat (JSON), so it starts there once
    what it waits for is done; ``redacted``: its words (title, body, why, source_ref,
    asked_by) passed the running Fleetwarden's redactor as they were stored (``False``:
    stored before it did so, or without it), one that knew the value of each secret named
    in ``redacted_for`` (the variables the config named then)."""

    id: int
    name: str
    title: str
    body: str
    source: TaskSource
    source_ref: str
    mission: int | None
    agent: str | None
    runtime: str | None
    repo: str | None
    state: TaskState
    why: str
    asked_by: str
    forge_run: int | None
    branch: str | None
    pull_url: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    projection: Projection
    after: tuple[int, ...] = ()
    runs: tuple[int, ...] = ()
    finished: Actual | None = None
    error: float | None = None
    error_unit: str | None = None
    asked_in: str | None = None
    redacted: bool = False
    redacted_for: frozenset[str] = frozenset()

    @property
    def open(self) -> bool:
        """Whether it has not ended."""
        return self.state in OPEN_STATES


@dataclass(frozen=True, slots=True)
class MissionRecord:
    """One mission: ``parent`` is the mission it is part of, if any; ``redacted``: its title
    passed the running Fleetwarden's redactor as it was stored, for the secrets named in
    ``redacted_for``."""

    id: int
    name: str
    title: str
    parent: int | None
    created_by: str
    created_at: datetime
    redacted: bool = False
    redacted_for: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class NewTask:
    """What a task is made with (its projection is reckoned by :mod:`fleet.tasks`)."""

    title: str
    source: TaskSource
    asked_by: str
    body: str = ""
    source_ref: str = ""
    mission: int | None = None
    agent: str | None = None
    runtime: str | None = None
    repo: str | None = None
    state: TaskState = "todo"
    why: str = ""
    forge_run: int | None = None
    name: str | None = None  # None: made from its title
