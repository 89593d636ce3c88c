"""The ledger's ``branches`` table (migration 21): each line — a branch of a repository
with its checkout, cut by an agent's run — and where it is in its life, so a restart keeps
every run's branch and checkout and ``branches`` can list them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row, insert_id
from fleet.ledger.records.epoch import from_epoch, optional_epoch
from fleet.ledger.records.lines import LineRecord, LineState


def _line(row: Row) -> LineRecord:
    copied = row["copied"] or ""
    return LineRecord(
        id=int(row["id"]),
        repo=row["repo"],
        agent=row["agent"],
        line=int(row["first_run"]) if row["first_run"] is not None else 0,
        branch=row["branch"],
        base_ref=row["base_ref"],
        fork_sha=row["fork_sha"],
        checkout=row["checkout"],
        state=LineState(row["state"]),
        created_at=from_epoch(row["created_at"]),
        last_run=row["last_run"],
        head_sha=row["head_sha"],
        pushed_sha=row["pushed_sha"],
        merged_sha=row["merged_sha"],
        ended_at=optional_epoch(row["ended_at"]),
        copied=tuple(p for p in copied.split("\n") if p),
        co_author=row["co_author"],
        host=row["host"],
    )


class LinesStore(Store):
    """Lines: runs' branches and checkouts, and the change each run made."""

    async def add_line(
        self,
        *,
        repo: str,
        agent: str,
        branch: str,
        base_ref: str,
        fork_sha: str,
        checkout: str,
        co_author: str | None = None,
        host: str = "local",
    ) -> int:
        """Record a new live line (its checkout on ``host``); its id."""
        at = self._epoch(None)
        async with self._transaction(f"record the branch {branch}") as conn:
            return await insert_id(
                conn,
                "INSERT INTO branches (repo, agent, branch, base_ref, fork_sha, checkout,"
                " state, created_at, co_author, host) VALUES (?, ?, ?, ?, ?, ?, 'live', ?, ?, ?)",
                (repo, agent, branch, base_ref, fork_sha, checkout, at, co_author, host),
            )

    async def set_line_branch(
        self, line_id: int, branch: str, checkout: str, copied: Sequence[str] = ()
    ) -> None:
        """Name line ``line_id``'s branch and checkout (once its number is known)."""
        async with self._transaction("name a branch") as conn:
            await conn.execute(
                "UPDATE branches SET branch = ?, checkout = ?, copied = ? WHERE id = ?",
                (branch, checkout, "\n".join(copied), line_id),
            )

    async def line_ran(self, line_id: int, run_id: int) -> None:
        """Run ``run_id`` works on line ``line_id`` (the first such run cut it)."""
        async with self._transaction("bind a run to its branch") as conn:
            await conn.execute(
                "UPDATE branches SET first_run = COALESCE(first_run, ?), last_run = ? WHERE id = ?",
                (run_id, run_id, line_id),
            )

    async def update_line(self, line_id: int, **fields: Any) -> None:
        """Set ``head_sha``, ``pushed_sha``, ``merged_sha``, ``state`` or ``ended_at``."""
        allowed = {"head_sha", "pushed_sha", "merged_sha", "state", "ended_at"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not a field of a line: {sorted(unknown)}")
        if "state" in fields and isinstance(fields["state"], LineState):
            fields["state"] = fields["state"].value
        if "ended_at" in fields:
            fields["ended_at"] = self._epoch(fields["ended_at"])
        names = sorted(fields)
        sets = ", ".join(f"{name} = ?" for name in names)
        async with self._transaction("update a branch") as conn:
            await conn.execute(
                f"UPDATE branches SET {sets} WHERE id = ?",
                (*(fields[name] for name in names), line_id),
            )

    async def line(self, line_id: int) -> LineRecord | None:
        row = await self._one("SELECT * FROM branches WHERE id = ?", (line_id,))
        return None if row is None else _line(row)

    async def live_line(self, agent: str) -> LineRecord | None:
        """``agent``'s newest live line."""
        row = await self._one(
            "SELECT * FROM branches WHERE agent = ? AND state = 'live' ORDER BY id DESC LIMIT 1",
            (agent,),
        )
        return None if row is None else _line(row)

    async def lines(
        self, *, repo: str | None = None, state: LineState | None = LineState.LIVE
    ) -> list[LineRecord]:
        """Lines (of ``repo``, in ``state``; ``None``: every state), oldest first."""
        where, params = [], []
        if repo is not None:
            where.append("repo = ?")
            params.append(repo)
        if state is not None:
            where.append("state = ?")
            params.append(state.value)
        sql = "SELECT * FROM branches"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self._all(sql + " ORDER BY id", params)
        return [_line(row) for row in rows]

    async def record_change(self, run_id: int, change_json: str) -> None:
        """Keep the change run ``run_id`` left, for its summary."""
        async with self._transaction("record a run's change") as conn:
            await conn.execute(
                "UPDATE run_reports SET repo_change = ? WHERE run_id = ?", (change_json, run_id)
            )

    async def run_change(self, run_id: int) -> str | None:
        row = await self._one("SELECT repo_change FROM run_reports WHERE run_id = ?", (run_id,))
        return None if row is None else row["repo_change"]
