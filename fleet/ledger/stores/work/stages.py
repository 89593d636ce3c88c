"""The ledger's ``pipeline_stages`` table (migrations 33, 35): each stage of a mission made
from a pipeline — its task, its gate as configured, how the gate went, and the line and
commit the gate judged (a gate is of a commit: :meth:`StagesStore.of_line` is what
:class:`~fleet.repos.landing.approval.ApprovalHold` reads). ``why`` is redacted
as it is stored, with the redactor the register's words are (a check's output may hold
what the agent's checkout printed), and cut to :data:`WHY_LENGTH`."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast, get_args

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row
from fleet.ledger.stores.work.marks import Redact

GateState = Literal["waiting", "checking", "asking", "passed", "failed", "stopped"]
GATE_STATES: Final = frozenset(get_args(GateState))
WHY_LENGTH: Final = 2_000
"""The longest ``why`` kept (a check's output's tail is cut to fit)."""


@dataclass(frozen=True, slots=True)
class StageRecord:
    """One stage of a mission's pipeline: its task, names, place, gate and how it went.
    ``gate`` is ``"auto"``, ``"approve"`` or a check's argv (a list); ``line_id`` and
    ``commit``: the line and the commit its gate was taken on (``None``, ``""``: not yet)."""

    task_id: int
    mission_id: int
    pipeline: str
    stage: str
    position: int
    gate: str | list[str]
    timeout: float
    gate_state: GateState
    why: str
    line_id: int | None = None
    commit: str = ""

    @property
    def judges(self) -> bool:
        """Whether its gate judges its work (``approve``, ``check:``), not ``auto``."""
        return self.gate != "auto"


@dataclass(frozen=True, slots=True)
class NewStage:
    """A stage to record, with its gate (``"auto"``, ``"approve"`` or a check's argv)."""

    task_id: int
    pipeline: str
    stage: str
    gate: str | Sequence[str]
    timeout: float = 0.0


def _stage(row: Row) -> StageRecord:
    gate = json.loads(str(row["gate"]))
    if isinstance(gate, dict):
        argv, timeout = [str(word) for word in gate.get("check", [])], float(gate["timeout"])
        found: str | list[str] = argv
    else:
        found, timeout = str(gate), 0.0
    state = str(row["gate_state"])
    line = row["line_id"]
    return StageRecord(
        task_id=int(row["task_id"]),
        mission_id=int(row["mission_id"]),
        pipeline=str(row["pipeline"]),
        stage=str(row["stage"]),
        position=int(row["position"]),
        gate=found,
        timeout=timeout,
        gate_state=cast(GateState, state if state in GATE_STATES else "waiting"),
        why=str(row["why"]),
        line_id=None if line is None else int(str(line)),
        commit=str(row["commit_sha"] or ""),
    )


class StagesStore(Store):
    """The stages of missions made from pipelines."""

    _redact: Redact | None = None

    def redact_with(self, redact: Redact) -> None:
        """From now on, redact a stage's ``why`` with ``redact`` as it is stored."""
        self._redact = redact

    async def add_stages(self, mission_id: int, stages: Sequence[NewStage]) -> None:
        """Record ``stages`` (in order) as mission ``mission_id``'s, each gate ``waiting``."""
        async with self._transaction(f"record the stages of mission {mission_id}") as conn:
            for position, new in enumerate(stages):
                gate = (
                    new.gate
                    if isinstance(new.gate, str)
                    else {"check": list(new.gate), "timeout": new.timeout}
                )
                await conn.execute(
                    "INSERT INTO pipeline_stages (task_id, mission_id, pipeline, stage,"
                    " position, gate) VALUES (?, ?, ?, ?, ?, ?)",
                    (new.task_id, mission_id, new.pipeline, new.stage, position,
                     json.dumps(gate)),
                )  # fmt: skip

    async def stage_of(self, task_id: int) -> StageRecord | None:
        """The stage task ``task_id`` is, or ``None`` (no pipeline's)."""
        row = await self._one("SELECT * FROM pipeline_stages WHERE task_id = ?", (task_id,))
        return None if row is None else _stage(row)

    async def of_mission(self, mission_id: int) -> list[StageRecord]:
        """Mission ``mission_id``'s stages in order (none: no pipeline's)."""
        rows = await self._all(
            "SELECT * FROM pipeline_stages WHERE mission_id = ? ORDER BY position", (mission_id,)
        )
        return [_stage(row) for row in rows]

    async def of_tasks(self, task_ids: Collection[int]) -> dict[int, StageRecord]:
        """The stages some of ``task_ids`` are, by task."""
        if not task_ids:
            return {}
        marks = ", ".join("?" for _ in task_ids)
        rows = await self._all(
            f"SELECT * FROM pipeline_stages WHERE task_id IN ({marks})", tuple(task_ids)
        )
        return {int(row["task_id"]): _stage(row) for row in rows}

    async def of_line(self, line_id: int) -> list[StageRecord]:
        """The stages whose gates were taken on line ``line_id``, oldest first."""
        rows = await self._all(
            "SELECT * FROM pipeline_stages WHERE line_id = ? ORDER BY task_id", (line_id,)
        )
        return [_stage(row) for row in rows]

    async def unsettled(self) -> list[StageRecord]:
        """Every stage whose gate is still to run or was running (``waiting``,
        ``checking``), and every failed one whose task or mission's other stages are still
        open (its stop was cut off), by mission and in order."""
        rows = await self._all(
            "SELECT * FROM pipeline_stages WHERE gate_state IN ('waiting', 'checking')"
            " OR (gate_state = 'failed' AND (mission_id IN (SELECT mission_id FROM"
            " pipeline_stages WHERE gate_state IN ('waiting', 'checking', 'asking'))"
            " OR task_id IN (SELECT id FROM tasks WHERE state IN"
            " ('todo', 'queued', 'working', 'review'))))"
            " ORDER BY mission_id, position",
            (),
        )
        return [_stage(row) for row in rows]

    async def move(
        self,
        task_id: int,
        state: GateState,
        why: str,
        *,
        came_from: Collection[str],
        at: tuple[int, str] | None = None,
        was: str | None = None,
    ) -> bool:
        """Move stage ``task_id``'s gate to ``state`` saying ``why``, if it is in one of
        ``came_from`` — and, given ``was``, its commit is ``was`` — so two movers never
        both win; ``at``: the line and commit it is taken on from now; whether it moved."""
        text = why if self._redact is None or not why else self._redact(why)
        if len(text) > WHY_LENGTH:
            text = text[: WHY_LENGTH - 1] + "…"
        marks = ", ".join("?" for _ in came_from)
        sets, args = "gate_state = ?, why = ?", list[object]([state, text])
        if at is not None:
            sets += ", line_id = ?, commit_sha = ?"
            args += [at[0], at[1]]
        where = f"task_id = ? AND gate_state IN ({marks})"
        args += [task_id, *came_from]
        if was is not None:
            where += " AND commit_sha = ?"
            args.append(was)
        async with self._transaction(f"move the gate of stage task {task_id}") as conn:
            cursor = await conn.execute(
                f"UPDATE pipeline_stages SET {sets} WHERE {where}", tuple(args)
            )
            return bool(cursor.rowcount)
