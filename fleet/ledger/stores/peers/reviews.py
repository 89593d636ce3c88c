"""The ledger's ``reviews`` table (migration 29): each round of review one agent was asked
for on another's work for a task, and its verdict."""

from __future__ import annotations

from datetime import datetime

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row, insert_id
from fleet.ledger.records.epoch import from_epoch
from fleet.ledger.records.peers import NewReview, ReviewRecord, ReviewState


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _review(row: Row) -> ReviewRecord:
    answered = row["answered_at"]
    state: ReviewState = row["state"]
    return ReviewRecord(
        id=int(row["id"]),
        task_id=int(row["task_id"]),
        coder=str(row["coder"]),
        reviewer=str(row["reviewer"]),
        round=int(row["round"]),
        rounds=int(row["rounds"]),
        repo=str(row["repo"]),
        branch=str(row["branch"]),
        commit=str(row["commit_sha"]),
        forge_run=_optional_int(row["forge_run"]),
        run_id=_optional_int(row["run_id"]),
        state=state,
        verdict=str(row["verdict"]),
        asked_at=from_epoch(float(row["asked_at"])),
        answered_at=None if answered is None else from_epoch(float(answered)),
    )


class ReviewsStore(Store):
    """Rounds of review: asked, bound to the reviewer's run, answered or ended."""

    async def add_review(self, new: NewReview) -> ReviewRecord:
        """Record a round of review asked now."""
        async with self._transaction(f"record a review of task {new.task_id}") as conn:
            review_id = await insert_id(
                conn,
                "INSERT INTO reviews (task_id, coder, reviewer, round, rounds, repo, branch,"
                " commit_sha, forge_run, state, asked_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'asked', ?)",
                (
                    new.task_id,
                    new.coder,
                    new.reviewer,
                    new.round,
                    new.rounds,
                    new.repo,
                    new.branch,
                    new.commit,
                    new.forge_run,
                    self._epoch(None),
                ),
            )
        found = await self.review(review_id)
        assert found is not None  # just written
        return found

    async def review(self, review_id: int) -> ReviewRecord | None:
        """Round ``review_id``, or ``None``."""
        row = await self._one("SELECT * FROM reviews WHERE id = ?", (review_id,))
        return None if row is None else _review(row)

    async def asked_of(self, reviewer: str) -> ReviewRecord | None:
        """The newest round still waiting for ``reviewer``'s verdict, or ``None``."""
        row = await self._one(
            "SELECT * FROM reviews WHERE reviewer = ? AND state = 'asked' ORDER BY id DESC LIMIT 1",
            (reviewer,),
        )
        return None if row is None else _review(row)

    async def asked(self) -> list[ReviewRecord]:
        """Every round still waiting for a verdict, oldest first."""
        rows = await self._all("SELECT * FROM reviews WHERE state = 'asked' ORDER BY id", ())
        return [_review(row) for row in rows]

    async def of_task(self, task_id: int) -> list[ReviewRecord]:
        """Every round of task ``task_id``'s review, oldest first."""
        rows = await self._all("SELECT * FROM reviews WHERE task_id = ? ORDER BY id", (task_id,))
        return [_review(row) for row in rows]

    async def of_line(self, repo: str, branch: str, since: datetime) -> list[ReviewRecord]:
        """Every round asked on branch ``branch`` of ``repo`` at or after ``since`` (the
        line's cut: a branch name a discarded line had is not this line's), oldest first."""
        rows = await self._all(
            "SELECT * FROM reviews WHERE repo = ? AND branch = ? AND asked_at >= ? ORDER BY id",
            (repo, branch, self._epoch(since)),
        )
        return [_review(row) for row in rows]

    async def bind_run(self, review_id: int, run_id: int) -> None:
        """Round ``review_id`` is done in the reviewer's run ``run_id``."""
        async with self._transaction(f"bind review {review_id} to run {run_id}") as conn:
            await conn.execute("UPDATE reviews SET run_id = ? WHERE id = ?", (run_id, review_id))

    async def answer(self, review_id: int, state: ReviewState, verdict: str) -> bool:
        """Round ``review_id`` answered (``approved``, ``changes``) or ``ended`` with
        ``verdict`` (redacted) now, only if it still waited; whether it was."""
        async with self._transaction(f"answer review {review_id}") as conn:
            cursor = await conn.execute(
                "UPDATE reviews SET state = ?, verdict = ?, answered_at = ?"
                " WHERE id = ? AND state = 'asked'",
                (state, verdict, self._epoch(None), review_id),
            )
            return bool(cursor.rowcount)
