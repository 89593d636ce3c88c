"""The ledger's ``tasks``, ``task_runs`` and ``task_waits`` tables (migration 28): every
task in the register — made with its projection, moved from state to state (a move names
the states it may come from, so two movers never both win), bound to its runs and its line,
and, when it ends, what it cost and how far its projection was off.

The words people, agents and issues wrote (a title, a body, why it is where it is, where it
came from, who asked) are redacted as they are stored, by the redactor the running
Fleetwarden gives (:meth:`TasksStore.redact_with`: it knows every secret the fleet holds),
so the ledger never holds a secret a reader of it could not redact; each row says whether
its words were, and for which secrets (``redacted`` and ``redacted_for``, migrations 30 and
31: :mod:`fleet.ledger.stores.work.marks`), and :meth:`TasksStore.redact_stored` redacts
those stored before, or before the config named a secret they hold."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from fleet.ledger.database.access import Access, Store
from fleet.ledger.database.engine import Row, insert_id
from fleet.ledger.records.epoch import from_epoch, to_epoch
from fleet.ledger.records.tasks import (
    ENDED_STATES,
    TASK_STATES,
    Actual,
    NewTask,
    Projection,
    TaskRecord,
    TaskSource,
    TaskState,
)
from fleet.ledger.stores.work.marks import KEPT, STALE, Marking, Redact, names_of, names_text
from fleet.ledger.stores.work.task_names import free_name, holds_what_went, name_from

__all__ = ["Redact", "TasksStore"]


def _pair(median: float | None, p90: float | None) -> tuple[float, float] | None:
    return None if median is None or p90 is None else (float(median), float(p90))


def _ids(text: object) -> tuple[int, ...]:
    return tuple(int(i) for i in str(text or "").split(",") if i)


def _at(value: object) -> datetime | None:
    return None if value is None else from_epoch(float(cast(float, value)))


def _task(row: Row, after: tuple[int, ...], runs: tuple[int, ...]) -> TaskRecord:
    tokens, usd = row["actual_tokens"], row["actual_usd"]
    finished = None
    if row["state"] in ENDED_STATES and tokens is not None:
        finished = Actual(int(tokens), None if usd is None else float(usd), len(runs))
    return TaskRecord(
        id=int(row["id"]),
        name=str(row["name"]),
        title=str(row["title"]),
        body=str(row["body"]),
        source=cast(TaskSource, row["source"]),
        source_ref=str(row["source_ref"]),
        mission=row["mission_id"],
        agent=row["agent"],
        runtime=row["runtime"],
        repo=row["repo"],
        state=cast(TaskState, row["state"]),
        why=str(row["why"]),
        asked_by=str(row["asked_by"]),
        asked_in=row["asked_in"],
        forge_run=row["forge_run"],
        branch=row["branch"],
        pull_url=row["pull_url"],
        created_at=from_epoch(float(row["created_at"])),
        updated_at=from_epoch(float(row["updated_at"])),
        started_at=_at(row["started_at"]),
        ended_at=_at(row["ended_at"]),
        projection=Projection(
            basis=str(row["basis"]),
            tasks=_ids(row["basis_tasks"]),
            tokens=_pair(row["projected_median_tokens"], row["projected_p90_tokens"]),
            usd=_pair(row["projected_median_usd"], row["projected_p90_usd"]),
        ),
        after=after,
        runs=runs,
        finished=finished,
        error=None if row["error"] is None else float(row["error"]),
        error_unit=row["error_unit"],
        redacted=bool(row["redacted"]),
        redacted_for=names_of(row["redacted_for"]),
    )


_SETTABLE = frozenset(
    {"agent", "runtime", "repo", "mission_id", "branch", "pull_url", "forge_run", "asked_in"}
)


class TasksStore(Store):
    """The tasks of the register, their runs and what they wait for."""

    def __init__(self, access: Access) -> None:
        super().__init__(access)
        self._marking = Marking()

    def redact_with(self, redact: Redact, *, names: Collection[str], whole: bool = True) -> None:
        """From now on, redact with ``redact`` every word a task is stored with (its title,
        body, why, source_ref and asked_by), and make a task's name from its redacted
        title. ``names``: the variables the config names as secrets; ``whole``: ``redact``
        knows each one's value, so a row it wrote is marked ``redacted`` for ``names``
        (else it is left unmarked, for a reader to withhold)."""
        self._marking = Marking(redact, whole, names_text(names))

    async def add_task(
        self, new: NewTask, projection: Projection, after: Sequence[int] = ()
    ) -> TaskRecord:
        """Make task ``new`` with ``projection``, waiting for ``after``; its name is
        ``new.name`` or one made from its title, with ``-2``, ``-3``… when taken."""
        at = self._epoch(None)
        tokens, usd = projection.tokens, projection.usd
        marking = self._marking  # one redactor and mark for the row, whatever reloads meanwhile
        title, clean = marking.clean(new.title), marking.clean
        # A name holding a secret is made from the redacted title instead.
        base = new.name if new.name and clean(new.name) == new.name else name_from(title)
        async with self._transaction("record a task") as conn:
            name = await free_name(conn, base)
            task_id = await insert_id(
                conn,
                "INSERT INTO tasks (name, title, body, source, source_ref, mission_id, agent,"
                " runtime, repo, state, why, asked_by, forge_run, created_at, updated_at,"
                " basis, basis_tasks, projected_median_tokens, projected_p90_tokens,"
                " projected_median_usd, projected_p90_usd, redacted, redacted_for)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, title, clean(new.body), new.source, clean(new.source_ref), new.mission,
                 new.agent, new.runtime, new.repo, new.state, clean(new.why),
                 clean(new.asked_by), new.forge_run, at, at,
                 projection.basis, ",".join(str(i) for i in projection.tasks),
                 None if tokens is None else tokens[0], None if tokens is None else tokens[1],
                 None if usd is None else usd[0], None if usd is None else usd[1],
                 marking.vouched, marking.names),
            )  # fmt: skip
            for other in dict.fromkeys(after):
                await conn.execute(
                    "INSERT INTO task_waits (task_id, after_id) VALUES (?, ?)", (task_id, other)
                )
        found = await self.task(task_id)
        assert found is not None
        return found

    async def task(self, task_id: int) -> TaskRecord | None:
        """Task ``task_id``, or ``None``."""
        found = await self._read("WHERE id = ?", (task_id,))
        return found[0] if found else None

    async def task_named(self, name: str) -> TaskRecord | None:
        """The task named ``name``, or ``None``."""
        found = await self._read("WHERE name = ?", (name,))
        return found[0] if found else None

    async def tasks(
        self,
        *,
        missions: Collection[int] | None = None,
        states: Collection[str] | None = None,
        agent: str | None = None,
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[TaskRecord]:
        """Tasks, oldest first: of ``missions``, in ``states``, of ``agent``, made or
        changed since ``since``; the latest ``limit`` of them."""
        where: list[str] = []
        params: list[object] = []
        if missions is not None:
            where.append(f"mission_id IN ({', '.join('?' for _ in missions) or 'NULL'})")
            params.extend(missions)
        if states is not None:
            where.append(f"state IN ({', '.join('?' for _ in states) or 'NULL'})")
            params.extend(states)
        if agent is not None:
            where.append("agent = ?")
            params.append(agent)
        if since is not None:
            where.append("updated_at >= ?")
            params.append(to_epoch(since))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        newest = await self._read(f"{clause} ORDER BY id DESC LIMIT ?", (*params, limit))
        return newest[::-1]

    async def counts(self, missions: Collection[int] | None = None) -> dict[TaskState, int]:
        """How many tasks are in each state (of ``missions``), every state present."""
        where = ""
        params: tuple[object, ...] = ()
        if missions is not None:
            where = f"WHERE mission_id IN ({', '.join('?' for _ in missions) or 'NULL'})"
            params = tuple(missions)
        rows = await self._all(f"SELECT state, COUNT(*) FROM tasks {where} GROUP BY state", params)
        found: dict[TaskState, int] = dict.fromkeys(TASK_STATES, 0)
        for row in rows:
            if row[0] in found:
                found[cast(TaskState, row[0])] = int(row[1])
        return found

    async def task_of_run(self, run_id: int) -> int | None:
        """The task run ``run_id`` was done for, if any."""
        row = await self._one("SELECT task_id FROM task_runs WHERE run_id = ?", (run_id,))
        return None if row is None else int(row[0])

    async def task_of_forge_run(self, forge_run: int) -> TaskRecord | None:
        """The task forge run ``forge_run`` is, if any."""
        found = await self._read("WHERE forge_run = ? ORDER BY id DESC", (forge_run,))
        return found[0] if found else None

    async def waiting_for(self, task_id: int) -> list[int]:
        """The tasks that wait for ``task_id``, oldest first."""
        rows = await self._all(
            "SELECT task_id FROM task_waits WHERE after_id = ? ORDER BY task_id", (task_id,)
        )
        return [int(row[0]) for row in rows]

    async def move(
        self,
        task_id: int,
        state: TaskState,
        why: str = "",
        *,
        came_from: Collection[str] | None = None,
    ) -> bool:
        """Move task ``task_id`` to ``state`` saying ``why``, only from ``came_from`` (any
        state when ``None``); whether it moved. The first move to ``working`` is its start;
        a move to an end is its end (:meth:`finish` also keeps what it cost)."""
        at = self._epoch(None)
        sql = f"UPDATE tasks SET state = ?, why = ?, updated_at = ?, {KEPT}"
        marking = self._marking
        params: list[object] = [state, marking.clean(why), at, marking.names, marking.vouched]
        if state == "working":
            sql += ", started_at = COALESCE(started_at, ?), ended_at = NULL"
            params.append(at)
        elif state in ENDED_STATES:
            sql += ", ended_at = ?"
            params.append(at)
        else:
            sql += ", ended_at = NULL"
        sql += " WHERE id = ?"
        params.append(task_id)
        if came_from is not None:
            sql += f" AND state IN ({', '.join('?' for _ in came_from) or 'NULL'})"
            params.extend(came_from)
        async with self._transaction(f"move task {task_id} to {state}") as conn:
            cursor = await conn.execute(sql, params)
            return bool(cursor.rowcount)

    async def finish(
        self,
        task_id: int,
        state: TaskState,
        why: str,
        actual: Actual,
        error: tuple[float, str] | None,
        *,
        came_from: Collection[str],
    ) -> bool:
        """End task ``task_id`` in ``state`` (an end), keeping what it cost and its
        projection's ``error`` (actual / projected median, and the unit); whether it moved
        (it was in ``came_from``)."""
        assert state in ENDED_STATES
        at = self._epoch(None)
        marks = ", ".join("?" for _ in came_from) or "NULL"
        marking = self._marking
        async with self._transaction(f"end task {task_id}") as conn:
            cursor = await conn.execute(
                "UPDATE tasks SET state = ?, why = ?, updated_at = ?, ended_at = ?,"
                " actual_tokens = ?, actual_usd = ?, error = ?, error_unit = ?,"
                f" {KEPT} WHERE id = ? AND state IN ({marks})",
                (state, marking.clean(why), at, at, actual.tokens, actual.usd,
                 None if error is None else error[0], None if error is None else error[1],
                 marking.names, marking.vouched, task_id, *came_from),
            )  # fmt: skip
            return bool(cursor.rowcount)

    async def set_fields(self, task_id: int, **fields: Any) -> None:
        """Set some of a task's fields: its agent, runtime, repo, mission (``mission_id``),
        branch, pull request (``pull_url``), forge run, or where its start was asked for
        (``asked_in``)."""
        unknown = set(fields) - _SETTABLE
        if unknown:
            raise ValueError(f"tasks have no settable fields {sorted(unknown)}")
        if not fields:
            return
        columns = ", ".join(f"{key} = ?" for key in fields)
        async with self._transaction(f"update task {task_id}") as conn:
            await conn.execute(
                f"UPDATE tasks SET {columns}, updated_at = ? WHERE id = ?",
                (*fields.values(), self._epoch(None), task_id),
            )

    async def set_body(self, task_id: int, body: str) -> None:
        """Set what task ``task_id``'s agent is told beyond its title (a pipeline's stage
        told of the one before it), redacted as it is stored."""
        async with self._transaction(f"update the body of task {task_id}") as conn:
            await conn.execute(
                "UPDATE tasks SET body = ?, updated_at = ? WHERE id = ?",
                (self._marking.clean(body), self._epoch(None), task_id),
            )

    async def add_run(self, task_id: int, run_id: int) -> None:
        """Run ``run_id`` was done for task ``task_id`` (a run belongs to its first task)."""
        async with self._transaction(f"bind run {run_id} to task {task_id}") as conn:
            await conn.execute(
                "INSERT INTO task_runs (run_id, task_id) VALUES (?, ?)"
                " ON CONFLICT (run_id) DO NOTHING",
                (run_id, task_id),
            )
            await conn.execute(
                "UPDATE tasks SET updated_at = ? WHERE id = ?", (self._epoch(None), task_id)
            )

    async def finished_tasks(
        self,
        *,
        agent: str | None = None,
        runtime: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        before: datetime | None = None,
    ) -> list[tuple[int, Actual]]:
        """The latest ``limit`` tasks that ended done or failed after some work (one run
        or more), with what each cost, newest first: of ``agent``, ``runtime`` and
        ``repo`` where given; ``before``: ended before then."""
        where = ["state IN ('done', 'failed')", "actual_tokens IS NOT NULL"]
        params: list[object] = []
        for column, value in (("agent", agent), ("runtime", runtime), ("repo", repo)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before is not None:
            where.append("ended_at < ?")
            params.append(to_epoch(before))
        rows = await self._all(
            "SELECT id, actual_tokens, actual_usd, (SELECT COUNT(*) FROM task_runs r"
            f" WHERE r.task_id = t.id) FROM tasks t WHERE {' AND '.join(where)}"
            " ORDER BY ended_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [
            (int(r[0]), Actual(int(r[1]), None if r[2] is None else float(r[2]), int(r[3])))
            for r in rows
            if int(r[3]) > 0
        ]

    async def errors_since(self, since: datetime) -> list[TaskRecord]:
        """The tasks that ended done or failed since ``since`` with a projection's error,
        oldest first."""
        return await self._read(
            "WHERE ended_at >= ? AND error IS NOT NULL AND state IN ('done', 'failed')"
            " ORDER BY ended_at, id",
            (to_epoch(since),),
        )

    async def redact_stored(self) -> int:
        """Redact, with the redactor :meth:`redact_with` gave, the words of every task
        stored without it (before Fleetwarden redacted as it stored, by a process without
        it, or before the config named a secret it now names), renaming one whose name
        held a secret, and mark each ``redacted`` for the secrets named now; how many were.
        Nothing without a redactor that knows every secret (``whole``)."""
        marking = self._marking
        if not marking.vouched:
            return 0
        rows = await self._all(
            "SELECT id, name, title, body, why, source_ref, asked_by FROM tasks"
            f" WHERE {STALE} ORDER BY id",
            (marking.names,),
        )
        if not rows:
            return 0
        clean = marking.clean
        async with self._transaction(f"redact the words of {len(rows)} stored tasks") as conn:
            for row in rows:
                name, title = str(row["name"]), clean(str(row["title"]))
                if clean(name) != name or holds_what_went(name, str(row["title"]), title):
                    name = await free_name(conn, name_from(title))
                await conn.execute(
                    "UPDATE tasks SET name = ?, title = ?, body = ?, why = ?, source_ref = ?,"
                    f" asked_by = ?, redacted = 1, redacted_for = ? WHERE id = ? AND {STALE}",
                    (name, title, clean(str(row["body"])), clean(str(row["why"])),
                     clean(str(row["source_ref"])), clean(str(row["asked_by"])),
                     marking.names, row["id"], marking.names),
                )  # fmt: skip
        return len(rows)

    async def _read(self, clause: str, params: Sequence[object]) -> list[TaskRecord]:
        rows = await self._all(f"SELECT * FROM tasks {clause}", params)
        if not rows:
            return []
        ids = [int(row["id"]) for row in rows]
        marks = ", ".join("?" for _ in ids)
        waits: dict[int, list[int]] = {}
        for row in await self._all(
            f"SELECT task_id, after_id FROM task_waits WHERE task_id IN ({marks})"
            " ORDER BY after_id",
            ids,
        ):
            waits.setdefault(int(row[0]), []).append(int(row[1]))
        runs: dict[int, list[int]] = {}
        for row in await self._all(
            f"SELECT task_id, run_id FROM task_runs WHERE task_id IN ({marks}) ORDER BY run_id",
            ids,
        ):
            runs.setdefault(int(row[0]), []).append(int(row[1]))
        return [
            _task(row, tuple(waits.get(int(row["id"]), ())), tuple(runs.get(int(row["id"]), ())))
            for row in rows
        ]
